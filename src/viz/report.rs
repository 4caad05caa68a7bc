//! `RUN/report.md`: the configuration, the evaluation tables beside the paper's numbers, and
//! the figures.

use std::fmt::Write as _;

use super::figures::Figure;
use crate::config::{Config, ModelKind};
use crate::eval::{EvalReport, tables};

/// The report of a run as Markdown; figures are linked relative to the run directory.
pub fn markdown(config: &Config, report: &EvalReport, figures: &[Figure]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# relatent run: {} {} ({} preset)\n",
        config.task,
        config.model.name(),
        config.preset.name()
    );
    let _ = writeln!(out, "{}\n", data_statement(config, report));
    let _ = writeln!(out, "## Configuration\n\n{}", configuration_table(config));
    let _ = writeln!(out, "## Results\n\n{}", tables::markdown(report));
    if !figures.is_empty() {
        let _ = writeln!(out, "## Figures\n");
        for f in figures {
            let _ = writeln!(
                out,
                "{}\n\n![{}](figures/{})\n",
                f.caption,
                f.file.trim_end_matches(".png"),
                f.file
            );
        }
    }
    out
}

/// Which data the numbers come from, and what that means for comparing with the paper.
fn data_statement(config: &Config, report: &EvalReport) -> String {
    match &config.data {
        None => format!(
            "Data: {}. Our numbers are on procedurally rendered images, the paper's on the official files, so compare trends, not third decimals.",
            report.data
        ),
        Some(path) => {
            format!(
                "Our numbers are on the official file `{}` ({}), like the paper's.",
                path.display(),
                report.data
            )
        }
    }
}

fn configuration_table(config: &Config) -> String {
    let rows = match config.model {
        ModelKind::AbsAe => method_rows(config),
        ModelKind::BetaVae | ModelKind::FactorVae => baseline_rows(config),
    };
    let mut out = String::from("| setting | value |\n|---|---|\n");
    for (k, v) in rows {
        let _ = writeln!(out, "| {k} | {v} |");
    }
    out
}

fn baseline_rows(config: &Config) -> Vec<(&'static str, String)> {
    let t = &config.train;
    let weight = match config.model {
        ModelKind::FactorVae => format!("γ (total correlation) = {}", config.factor_vae.gamma),
        _ => format!("β (KL) = {}", config.beta_vae.beta),
    };
    vec![
        (
            "task / preset / seed",
            format!("{} / {} / {}", config.task, config.preset.name(), config.seed),
        ),
        ("model", format!("{}, {weight}", config.model.name())),
        ("steps, batch, learning rate", format!("{}, {}, {}", t.steps, t.batch_size, t.lr)),
    ]
}

fn method_rows(config: &Config) -> Vec<(&'static str, String)> {
    let (t, p, r) = (&config.train, &config.prior, &config.rel);
    let (s, c) = (&config.supervised, &config.consistency);
    let relations = if config.relations.is_empty() {
        "all of the task's".to_string()
    } else {
        config.relations.join(", ")
    };
    let rows: Vec<(&'static str, String)> = vec![
        (
            "task / preset / seed",
            format!("{} / {} / {}", config.task, config.preset.name(), config.seed),
        ),
        ("labelled images per component (τ)", config.tau.to_string()),
        ("relations", relations),
        ("steps (warm-up), batch", format!("{} ({}), {}", t.steps, t.warmup_steps, t.batch_size)),
        ("learning rates (AE and disc., ReL)", format!("{}, {}", t.lr, r.lr)),
        ("β (adversarial), γ (ReL)", format!("{}, {}", t.beta, t.gamma)),
        (
            "ReL objective, input augmentation",
            format!("{}, {}", r.objective.name(), t.augment.name()),
        ),
        (
            "prior covariance, shrink, ε, refresh every",
            format!("{}, {}, {}, {}", p.covariance.name(), p.shrink, p.epsilon, p.refresh_every),
        ),
        (
            "supervised weight (labelled batch, augmented)",
            format!("{} ({}, {})", s.weight, s.labelled_batch, s.augment),
        ),
        (
            "views: placed by position, at band edges; slant",
            format!("{}, {}; {}", s.position_anchor, s.edge_share, s.shear),
        ),
        (
            "consistency weight (threshold, share of the batch)",
            format!("{} ({}, {})", c.weight, c.threshold, c.share),
        ),
        (
            "cycles: prior samples (objective, batch), reconstructions; decoder-only steps",
            format!(
                "{} ({}, {}), {}; {}",
                config.cycle.weight,
                config.cycle.objective.name(),
                config.cycle.batch,
                config.cycle.reconstruction,
                config.cycle.decoder_steps
            ),
        ),
        (
            "ReL updates per step, also beside the autoencoder, ReL-only steps after",
            format!("{}, {}, {}", r.updates_per_step, r.during_autoencoder, r.finetune_steps),
        ),
        (
            "ReL-only batches: share of real codes, pseudo-labelled images, views of each, residual",
            format!(
                "{}, {}, {}, {}",
                r.labelled_fraction, r.pseudo_labelled, r.real_views, r.residual
            ),
        ),
        (
            "α rule (posterior temperature)",
            format!("{} ({})", config.eval.alpha_rule.name(), config.eval.posterior_temperature),
        ),
    ];
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Preset;
    use crate::eval::{ClassificationRow, Reconstruction, RelationalRow, TrainSummary};

    fn report() -> EvalReport {
        EvalReport {
            task: "dsprites".into(),
            model: "absae".into(),
            tau: 10,
            alpha_rule: "posterior".into(),
            posterior_temperature: Some(10.0),
            preset: "default".into(),
            data: "dsprites (procedural)".into(),
            test_images: 100,
            classification: vec![ClassificationRow {
                alpha: 0.0,
                accuracy: Some(0.75),
                accepted_ratio: 1.0,
            }],
            factor_accuracy: [("shape".to_string(), 0.8)].into_iter().collect(),
            factor_accuracy_by_value: Default::default(),
            relational: vec![RelationalRow {
                depth: 1,
                alpha: 0.0,
                accuracy: Some(0.9),
                accepted_ratio: 1.0,
                ..Default::default()
            }],
            relational_images: vec![RelationalRow {
                depth: 5,
                alpha: 0.5,
                accuracy: None,
                accepted_ratio: 0.0,
                ..Default::default()
            }],
            relational_images_ceiling: None,
            reconstruction: Reconstruction { bce_per_image: 50.0, mse_per_pixel: 0.01 },
            disentanglement: None,
            baseline: None,
            ood_reference: None,
            ood: Vec::new(),
            train: TrainSummary { steps: 10, seconds: 1.0, backend: "flex".into() },
        }
    }

    #[test]
    fn report_has_config_tables_with_paper_numbers_and_figures() {
        let config = Config::preset(Preset::Default, "dsprites").unwrap();
        let figures = vec![Figure { file: "pca.png".into(), caption: "PCA.".into() }];
        let md = markdown(&config, &report(), &figures);
        assert!(md.contains("procedurally rendered images"), "{md}");
        assert!(md.contains("| labelled images per component (τ) | 10 |"), "{md}");
        assert!(md.contains("| views: placed by position, at band edges; slant | true, 0.4; 0 |"));
        // Ours beside the paper's table-4 row for α = 0 and table-5 row for depth 1.
        assert!(md.contains("| 0.0 | 0.750 | 1.000 | 0.548 | 1.000 |"), "{md}");
        assert!(md.contains("| 1 | 0.0 | 0.900 | 1.000 | 0.990 | 1.000 |"), "{md}");
        assert!(md.contains("| 5 | 0.5 | – | 0.000 |"), "image-level row: {md}");
        assert!(md.contains("![pca](figures/pca.png)"), "{md}");
    }

    #[test]
    fn report_names_the_official_file_when_one_was_used() {
        let mut config = Config::preset(Preset::Default, "dsprites").unwrap();
        config.data = Some("dsprites.npz".into());
        assert!(markdown(&config, &report(), &[]).contains("official file `dsprites.npz`"));
    }
}
