//! Comparing runs (SPEC §7): the Table-1 markdown (every run, then the best of each model
//! beside the paper's numbers) and the Figure-5 trade-off plots (each disentanglement metric
//! against reconstruction error, one line per model through its swept weights).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::ModelKind;
use crate::eval::metrics::Disentanglement;
use crate::eval::{EvalReport, read_eval};
use crate::run_dir::RunDir;
use crate::tasks;
use crate::viz::charts::{Panel, Series, save_panels};
use crate::{Error, Result};

/// One evaluated run, as the comparison sees it.
#[derive(Clone, Debug)]
pub struct ComparedRun {
    pub dir: PathBuf,
    pub task: String,
    pub model: ModelKind,
    /// The weight a sweep varies: β (β-VAE, AbsAE) or γ (FactorVAE).
    pub weight: f64,
    pub disentanglement: Disentanglement,
    pub bce_per_image: f64,
    pub mse_per_pixel: f64,
    pub steps: usize,
    pub seconds: f64,
}

impl ComparedRun {
    /// Reads the run in `dir`: its config and its `eval.json`, which must have the metrics.
    pub fn read(dir: &Path) -> Result<ComparedRun> {
        let run = RunDir::new(dir);
        let config = run.read_config()?;
        let eval: EvalReport = read_eval(&run)?;
        let disentanglement = eval.disentanglement.ok_or_else(|| {
            Error::file(
                run.eval(),
                "has no disentanglement metrics (eval.disentanglement_points was 0)",
            )
        })?;
        Ok(ComparedRun {
            dir: dir.to_path_buf(),
            weight: config.model_weight(),
            task: config.task,
            model: config.model,
            disentanglement,
            bce_per_image: eval.reconstruction.bce_per_image,
            mse_per_pixel: eval.reconstruction.mse_per_pixel,
            steps: eval.train.steps,
            seconds: eval.train.seconds,
        })
    }

    fn weight_label(&self) -> String {
        format!("{} = {}", self.model.weight_symbol(), self.weight)
    }
}

/// Reads every run; they must all be of one task.
pub fn read_runs(dirs: &[PathBuf]) -> Result<Vec<ComparedRun>> {
    let runs: Vec<ComparedRun> =
        dirs.iter().map(|d| ComparedRun::read(d)).collect::<Result<_>>()?;
    if let Some(first) = runs.first()
        && let Some(other) = runs.iter().find(|r| r.task != first.task)
    {
        let message = format!("is a {} run; the others are {}", other.task, first.task);
        return Err(Error::file(&other.dir, message));
    }
    Ok(runs)
}

/// The models present, in a fixed order (the method first).
fn models(runs: &[ComparedRun]) -> Vec<ModelKind> {
    ModelKind::ALL.into_iter().filter(|&m| runs.iter().any(|r| r.model == m)).collect()
}

/// Every run, then the best run of each model (highest DCI mean) beside the paper's Table 1.
pub fn markdown(runs: &[ComparedRun]) -> String {
    let mut out = String::from(
        "## Every run\n\n| run | model | weight | DCI D | DCI C | DCI I | DCI mean | MIG | SAP | BCE / image | MSE / pixel | steps | seconds |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in runs {
        let (d, dci) = (&r.disentanglement, &r.disentanglement.dci);
        let name = r.dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} | {:.5} | {} | {:.0} |",
            r.model.name(),
            r.weight_label(),
            dci.disentanglement,
            dci.completeness,
            dci.informativeness,
            dci.mean,
            d.mig,
            d.sap,
            r.bce_per_image,
            r.mse_per_pixel,
            r.steps,
            r.seconds
        );
    }
    let task = runs.first().map(|r| r.task.as_str()).unwrap_or("");
    let _ = writeln!(
        out,
        "\n## Best run of each model (highest DCI mean), beside the paper's Table 1\n"
    );
    let _ = writeln!(
        out,
        "| model | weight | DCI | MIG | SAP | BCE / image | paper DCI | paper MIG | paper SAP |\n|---|---|---|---|---|---|---|---|---|"
    );
    for model in models(runs) {
        let best = runs
            .iter()
            .filter(|r| r.model == model)
            .max_by(|a, b| a.disentanglement.dci.mean.total_cmp(&b.disentanglement.dci.mean))
            .expect("model has a run");
        let d = &best.disentanglement;
        let paper = tasks::paper::for_task(task).and_then(|p| p.disentanglement(model.name()));
        let cell = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "–".into());
        let _ = writeln!(
            out,
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.2} | {} | {} | {} |",
            model.name(),
            best.weight_label(),
            d.dci.mean,
            d.mig,
            d.sap,
            best.bce_per_image,
            cell(paper.map(|p| p.0)),
            cell(paper.map(|p| p.1)),
            cell(paper.map(|p| p.2))
        );
    }
    out
}

/// One panel per metric (DCI mean, MIG, SAP) against BCE per image; one line per model,
/// its runs in the order of their weight.
pub fn tradeoff_panels(runs: &[ComparedRun]) -> Vec<Panel> {
    type Metric = (&'static str, fn(&Disentanglement) -> f64);
    let metrics: [Metric; 3] =
        [("DCI (mean of D, C, I)", |d| d.dci.mean), ("MIG", |d| d.mig), ("SAP", |d| d.sap)];
    metrics
        .iter()
        .map(|(name, metric)| Panel {
            title: format!("{name} against reconstruction error"),
            x_label: "reconstruction error (BCE per image)".into(),
            y_label: name.to_string(),
            series: models(runs)
                .into_iter()
                .map(|model| {
                    let mut of_model: Vec<&ComparedRun> =
                        runs.iter().filter(|r| r.model == model).collect();
                    of_model.sort_by(|a, b| a.weight.total_cmp(&b.weight));
                    Series {
                        points: of_model
                            .iter()
                            .map(|r| (r.bce_per_image, metric(&r.disentanglement)))
                            .collect(),
                        label: model.name().into(),
                    }
                })
                .collect(),
            y_range: Some((0.0, 1.0)),
        })
        .collect()
}

/// Writes `comparison.md` and `tradeoff.png` into `out` (created if needed); returns their paths.
pub fn write_comparison(runs: &[ComparedRun], out: &Path) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(out).map_err(|e| Error::file(out, e))?;
    let (table, plot) = (out.join("comparison.md"), out.join("tradeoff.png"));
    let task = runs.first().map(|r| r.task.as_str()).unwrap_or("");
    let text = format!(
        "# Disentanglement against reconstruction: {} runs on {task}\n\n{}\n![trade-off](tradeoff.png)\n",
        runs.len(),
        markdown(runs)
    );
    crate::data::images::write_atomic(&table, text.as_bytes())?;
    save_panels(
        &plot,
        "Disentanglement / reconstruction trade-off (paper figure 5)",
        &tradeoff_panels(runs),
        3,
    )?;
    Ok((table, plot))
}
