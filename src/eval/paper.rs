//! The source paper's numbers (Appendix C, tables 4 and 5) for side-by-side tables.

/// Table 4, dSprites, τ = 10: (α, accuracy, accepted ratio).
pub const DSPRITES_CLASSIFICATION_TAU10: [(f64, f64, f64); 6] =
    [(0.0, 0.548, 1.0), (0.1, 0.592, 1.0), (0.3, 0.676, 0.991), (0.5, 0.865, 0.988), (0.7, 0.948, 0.994), (0.9, 0.921, 0.981)];

/// Table 5, dSprites: (depth, α, accuracy, accepted ratio).
pub const DSPRITES_RELATIONAL: [(usize, f64, f64, f64); 18] = [
    (1, 0.0, 0.9896, 1.0),
    (1, 0.1, 0.9986, 0.9998),
    (1, 0.3, 0.9993, 0.9987),
    (1, 0.5, 1.0, 0.9832),
    (1, 0.7, 0.9999, 0.9730),
    (1, 0.9, 1.0, 0.9566),
    (5, 0.0, 0.9898, 1.0),
    (5, 0.1, 0.9932, 1.0),
    (5, 0.3, 0.9992, 0.9893),
    (5, 0.5, 0.9997, 0.9711),
    (5, 0.7, 0.9998, 0.9543),
    (5, 0.9, 1.0, 0.9523),
    (10, 0.0, 0.9894, 1.0),
    (10, 0.1, 0.9891, 0.9993),
    (10, 0.3, 0.9987, 0.9881),
    (10, 0.5, 0.9995, 0.9695),
    (10, 0.7, 0.9998, 0.9623),
    (10, 0.9, 1.0, 0.9419),
];

/// The paper's classification row for (task, τ, α), where the paper has one.
pub fn classification(task: &str, tau: usize, alpha: f64) -> Option<(f64, f64)> {
    (task.starts_with("dsprites") && tau == 10)
        .then(|| DSPRITES_CLASSIFICATION_TAU10.iter().find(|r| r.0 == alpha).map(|r| (r.1, r.2)))
        .flatten()
}

/// The paper's relational row for (task, depth, α).
pub fn relational(task: &str, depth: usize, alpha: f64) -> Option<(f64, f64)> {
    task.starts_with("dsprites")
        .then(|| DSPRITES_RELATIONAL.iter().find(|r| r.0 == depth && r.1 == alpha).map(|r| (r.2, r.3)))
        .flatten()
}

/// Table 1, dSprites: (model, DCI mean, MIG, SAP).
pub const DSPRITES_TABLE1: [(&str, f64, f64, f64); 3] = [("absae", 0.9543, 0.994, 0.7728), ("beta-vae", 0.4566, 0.602, 0.67), ("factor-vae", 0.8942, 0.98, 0.61)];

/// The paper's (DCI, MIG, SAP) of `model` on `task` (Table 1), where the paper has them.
pub fn model_disentanglement(task: &str, model: &str) -> Option<(f64, f64, f64)> {
    task.starts_with("dsprites").then(|| DSPRITES_TABLE1.iter().find(|r| r.0 == model).map(|r| (r.1, r.2, r.3))).flatten()
}
