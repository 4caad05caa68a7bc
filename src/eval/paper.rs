//! The source paper's numbers (Appendix C, tables 4 and 5; table 1) for side-by-side tables.

/// The paper's datasets, in its tables' column order.
const DATASETS: [&str; 3] = ["hwf", "dsprites", "shapes3d"];

/// Table 4: for each τ of 10, 20, 30 and each α of the grid, (accuracy, accepted ratio) on
/// HWF, dSprites and Shapes3D.
const CLASSIFICATION: [(f64, usize, [(f64, f64); 3]); 18] = [
    (0.0, 10, [(0.917, 1.0), (0.548, 1.0), (0.115, 1.0)]),
    (0.0, 20, [(0.977, 1.0), (0.554, 1.0), (0.272, 1.0)]),
    (0.0, 30, [(0.982, 1.0), (0.590, 1.0), (0.370, 1.0)]),
    (0.1, 10, [(0.954, 0.995), (0.592, 1.0), (0.220, 0.749)]),
    (0.1, 20, [(0.992, 0.918), (0.631, 0.999), (0.478, 0.811)]),
    (0.1, 30, [(0.987, 0.995), (0.642, 1.0), (0.553, 0.873)]),
    (0.3, 10, [(0.978, 0.988), (0.676, 0.991), (0.617, 0.752)]),
    (0.3, 20, [(0.990, 0.982), (0.700, 0.993), (0.713, 0.780)]),
    (0.3, 30, [(1.0, 0.985), (0.728, 0.993), (0.779, 0.802)]),
    (0.5, 10, [(0.983, 0.973), (0.865, 0.988), (0.699, 0.753)]),
    (0.5, 20, [(0.993, 0.974), (0.882, 0.990), (0.853, 0.714)]),
    (0.5, 30, [(0.998, 0.982), (0.891, 0.989), (0.890, 0.781)]),
    (0.7, 10, [(0.982, 0.970), (0.948, 0.994), (0.821, 0.673)]),
    (0.7, 20, [(0.995, 0.971), (0.937, 0.989), (0.881, 0.738)]),
    (0.7, 30, [(0.994, 0.986), (0.966, 0.993), (0.902, 0.759)]),
    (0.9, 10, [(0.993, 0.957), (0.921, 0.981), (0.854, 0.646)]),
    (0.9, 20, [(0.999, 0.953), (0.956, 0.987), (0.893, 0.758)]),
    (0.9, 30, [(0.999, 0.951), (0.976, 0.985), (0.910, 0.711)]),
];

/// Table 5: for each depth and α, (accuracy, accepted ratio) on HWF, dSprites and Shapes3D.
const RELATIONAL: [(usize, f64, [(f64, f64); 3]); 18] = [
    (1, 0.0, [(0.9966, 1.0), (0.9896, 1.0), (0.7521, 1.0)]),
    (5, 0.0, [(0.9939, 1.0), (0.9898, 1.0), (0.7378, 1.0)]),
    (10, 0.0, [(0.9909, 1.0), (0.9894, 1.0), (0.7210, 1.0)]),
    (1, 0.1, [(0.9971, 0.9984), (0.9986, 0.9998), (0.7774, 0.9702)]),
    (5, 0.1, [(0.9930, 0.9994), (0.9932, 1.0), (0.7845, 0.9638)]),
    (10, 0.1, [(0.9913, 0.9993), (0.9891, 0.9993), (0.7519, 0.9793)]),
    (1, 0.3, [(0.9985, 0.9989), (0.9993, 0.9987), (0.8342, 0.9361)]),
    (5, 0.3, [(0.9949, 0.9992), (0.9992, 0.9893), (0.8062, 0.9250)]),
    (10, 0.3, [(0.9909, 0.9985), (0.9987, 0.9881), (0.7933, 0.9078)]),
    (1, 0.5, [(0.9980, 0.9989), (1.0, 0.9832), (0.8518, 0.9011)]),
    (5, 0.5, [(0.9945, 0.9993), (0.9997, 0.9711), (0.8728, 0.9034)]),
    (10, 0.5, [(0.9909, 0.9993), (0.9995, 0.9695), (0.8877, 0.8843)]),
    (1, 0.7, [(0.9980, 0.9988), (0.9999, 0.9730), (0.8902, 0.8392)]),
    (5, 0.7, [(0.9962, 0.9990), (0.9998, 0.9543), (0.8726, 0.7531)]),
    (10, 0.7, [(0.9912, 0.9987), (0.9998, 0.9623), (0.8699, 0.7111)]),
    (1, 0.9, [(0.9979, 0.9990), (1.0, 0.9566), (0.9102, 0.7734)]),
    (5, 0.9, [(0.9938, 0.9987), (1.0, 0.9523), (0.8830, 0.6517)]),
    (10, 0.9, [(0.9892, 0.9984), (1.0, 0.9419), (0.8627, 0.6333)]),
];

/// The paper's column for `task` (both dSprites tasks read its dSprites column).
fn dataset(task: &str) -> Option<usize> {
    let name = if task.starts_with("dsprites") { "dsprites" } else { task };
    DATASETS.iter().position(|&d| d == name)
}

/// The paper's classification row for (task, τ, α), where the paper has one.
pub fn classification(task: &str, tau: usize, alpha: f64) -> Option<(f64, f64)> {
    let column = dataset(task)?;
    CLASSIFICATION.iter().find(|r| r.0 == alpha && r.1 == tau).map(|r| r.2[column])
}

/// The paper's relational row for (task, depth, α).
pub fn relational(task: &str, depth: usize, alpha: f64) -> Option<(f64, f64)> {
    let column = dataset(task)?;
    RELATIONAL.iter().find(|r| r.0 == depth && r.1 == alpha).map(|r| r.2[column])
}

/// Table 1, dSprites: (model, DCI mean, MIG, SAP).
pub const DSPRITES_TABLE1: [(&str, f64, f64, f64); 3] = [
    ("absae", 0.9543, 0.994, 0.7728),
    ("beta-vae", 0.4566, 0.602, 0.67),
    ("factor-vae", 0.8942, 0.98, 0.61),
];

/// The paper's (DCI, MIG, SAP) of `model` on `task` (Table 1), where the paper has them.
pub fn model_disentanglement(task: &str, model: &str) -> Option<(f64, f64, f64)> {
    task.starts_with("dsprites")
        .then(|| DSPRITES_TABLE1.iter().find(|r| r.0 == model).map(|r| (r.1, r.2, r.3)))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_from_the_right_column() {
        assert_eq!(classification("dsprites", 10, 0.0), Some((0.548, 1.0)));
        assert_eq!(classification("dsprites-full", 10, 0.7), Some((0.948, 0.994)));
        assert_eq!(classification("hwf", 20, 0.1), Some((0.992, 0.918)));
        assert_eq!(classification("shapes3d", 30, 0.9), Some((0.910, 0.711)));
        assert_eq!(classification("shapes3d", 15, 0.0), None, "no such τ in the paper");
        assert_eq!(relational("hwf", 10, 0.0), Some((0.9909, 1.0)));
        assert_eq!(relational("dsprites", 5, 0.5), Some((0.9997, 0.9711)));
        assert_eq!(relational("shapes3d", 1, 0.9), Some((0.9102, 0.7734)));
        assert_eq!(relational("mnist", 1, 0.0), None);
    }
}
