//! Comparing runs (SPEC §7): the Table-1 markdown (every run, every setting as mean ± std
//! over its seeds, then the best of each model beside the paper's numbers, and the AbsAE's
//! α and τ tables with spreads) and the Figure-5 trade-off plots (each disentanglement metric
//! against reconstruction error, one line per model through its swept weights, error bars
//! over seeds).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::{Config, ModelKind};
use crate::eval::classification::ClassificationRow;
use crate::eval::metrics::Disentanglement;
use crate::eval::relational::RelationalRow;
use crate::eval::{ALPHAS, DEPTHS, EvalReport, read_eval};
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
    pub tau: usize,
    pub seed: u64,
    /// The run's config without its seed: runs with equal settings differ only by seed.
    setting: String,
    /// None where the run's evaluation had no factors to score (HWF) or skipped them.
    pub disentanglement: Option<Disentanglement>,
    pub bce_per_image: f64,
    pub mse_per_pixel: f64,
    pub classification: Vec<ClassificationRow>,
    pub relational: Vec<RelationalRow>,
    pub relational_images: Vec<RelationalRow>,
    pub steps: usize,
    pub seconds: f64,
}

impl ComparedRun {
    /// One disentanglement metric of the run; NaN (left out of spreads, shown "–") without them.
    fn metric(&self, f: impl Fn(&Disentanglement) -> f64) -> f64 {
        self.disentanglement.as_ref().map_or(f64::NAN, f)
    }

    /// Reads the run in `dir`: its config and its `eval.json`.
    pub fn read(dir: &Path) -> Result<ComparedRun> {
        let run = RunDir::new(dir);
        let config = run.read_config()?;
        let eval: EvalReport = read_eval(&run)?;
        let disentanglement = eval.disentanglement;
        let setting = Config { seed: 0, ..config.clone() }.to_toml();
        Ok(ComparedRun {
            dir: dir.to_path_buf(),
            weight: config.model_weight(),
            tau: config.tau,
            seed: config.seed,
            setting,
            task: config.task,
            model: config.model,
            disentanglement,
            bce_per_image: eval.reconstruction.bce_per_image,
            mse_per_pixel: eval.reconstruction.mse_per_pixel,
            classification: eval.classification,
            relational: eval.relational,
            relational_images: eval.relational_images,
            steps: eval.train.steps,
            seconds: eval.train.seconds,
        })
    }

    fn name(&self) -> String {
        self.dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
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

/// Mean, sample standard deviation and count of some values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 for a single value.
    pub std: f64,
    pub n: usize,
}

impl Spread {
    /// The spread of the finite values (NaN mean when there are none).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Spread { mean, std, n }
    }

    /// `0.912 ± 0.013`, or `0.912` for one value and `–` for none.
    fn cell(&self, decimals: usize) -> String {
        match self.n {
            0 => "–".into(),
            1 => format!("{:.decimals$}", self.mean),
            _ => format!("{:.decimals$} ± {:.decimals$}", self.mean, self.std),
        }
    }
}

/// Runs that differ only by seed, in the order of their first run.
#[derive(Clone, Debug)]
pub struct Setting<'a> {
    pub runs: Vec<&'a ComparedRun>,
}

impl Setting<'_> {
    fn first(&self) -> &ComparedRun {
        self.runs[0]
    }

    /// The first run's folder name without its `-seedN`.
    fn label(&self) -> String {
        let name = self.first().name();
        match name.rsplit_once("-seed") {
            Some((head, seed)) if seed.parse::<u64>().is_ok() => head.to_string(),
            _ => name,
        }
    }

    fn spread(&self, value: impl Fn(&ComparedRun) -> f64) -> Spread {
        Spread::of(self.runs.iter().map(|r| value(r)))
    }

    fn dci(&self) -> Spread {
        self.spread(|r| r.metric(|d| d.dci.mean))
    }

    fn seeds(&self) -> String {
        self.runs.iter().map(|r| r.seed.to_string()).collect::<Vec<_>>().join(", ")
    }
}

/// The runs grouped into settings (equal configs but for the seed).
pub fn settings(runs: &[ComparedRun]) -> Vec<Setting<'_>> {
    let mut settings: Vec<Setting> = Vec::new();
    for run in runs {
        match settings.iter_mut().find(|s| s.first().setting == run.setting) {
            Some(s) => s.runs.push(run),
            None => settings.push(Setting { runs: vec![run] }),
        }
    }
    settings
}

/// The models present, in a fixed order (the method first).
fn models(runs: &[ComparedRun]) -> Vec<ModelKind> {
    ModelKind::ALL.into_iter().filter(|&m| runs.iter().any(|r| r.model == m)).collect()
}

/// Every run; every setting as mean ± std over its seeds; the best setting of each model
/// (highest mean DCI) beside the paper's Table 1; and, for the AbsAE, accuracy against α and
/// relational accuracy with their spreads (the τ rows of the paper's Table 4 when τ is swept).
pub fn markdown(runs: &[ComparedRun]) -> String {
    let mut out = every_run(runs);
    let settings = settings(runs);
    out.push_str(&over_seeds(&settings));
    out.push_str(&best_of_each_model(runs, &settings));
    out.push_str(&by_alpha(&settings));
    out
}

fn every_run(runs: &[ComparedRun]) -> String {
    let mut out = String::from(
        "## Every run\n\n| run | model | weight | τ | seed | DCI D | DCI C | DCI I | DCI mean | MIG | SAP | BCE / image | MSE / pixel | steps | seconds |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in runs {
        let metric = |f: fn(&Disentanglement) -> f64| Spread::of([r.metric(f)]).cell(3);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.5} | {} | {:.0} |",
            r.name(),
            r.model.name(),
            r.weight_label(),
            r.tau,
            r.seed,
            metric(|d| d.dci.disentanglement),
            metric(|d| d.dci.completeness),
            metric(|d| d.dci.informativeness),
            metric(|d| d.dci.mean),
            metric(|d| d.mig),
            metric(|d| d.sap),
            r.bce_per_image,
            r.mse_per_pixel,
            r.steps,
            r.seconds
        );
    }
    out
}

fn over_seeds(settings: &[Setting]) -> String {
    let mut out = String::from(
        "\n## Every setting over its seeds (mean ± sample std)\n\n| setting | model | weight | τ | n | seeds | DCI mean | MIG | SAP | BCE / image |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for s in settings {
        let r = s.first();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.label(),
            r.model.name(),
            r.weight_label(),
            r.tau,
            s.runs.len(),
            s.seeds(),
            s.dci().cell(3),
            s.spread(|r| r.metric(|d| d.mig)).cell(3),
            s.spread(|r| r.metric(|d| d.sap)).cell(3),
            s.spread(|r| r.bce_per_image).cell(2),
        );
    }
    out
}

fn best_of_each_model(runs: &[ComparedRun], settings: &[Setting]) -> String {
    let task = runs.first().map(|r| r.task.as_str()).unwrap_or("");
    let mut out = String::from(
        "\n## Best setting of each model (highest mean DCI), beside the paper's Table 1\n\n| model | weight | n | DCI | MIG | SAP | BCE / image | paper DCI | paper MIG | paper SAP |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for model in models(runs) {
        let Some(best) = settings
            .iter()
            .filter(|s| s.first().model == model && s.dci().n > 0)
            .max_by(|a, b| a.dci().mean.total_cmp(&b.dci().mean))
        else {
            continue;
        };
        let paper = tasks::paper::for_task(task).and_then(|p| p.disentanglement(model.name()));
        let cell = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "–".into());
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            model.name(),
            best.first().weight_label(),
            best.runs.len(),
            best.dci().cell(3),
            best.spread(|r| r.metric(|d| d.mig)).cell(3),
            best.spread(|r| r.metric(|d| d.sap)).cell(3),
            best.spread(|r| r.bce_per_image).cell(2),
            cell(paper.map(|p| p.0)),
            cell(paper.map(|p| p.1)),
            cell(paper.map(|p| p.2))
        );
    }
    out
}

/// The AbsAE settings' accuracy at every α: classification of test images, then relational
/// accuracy by depth, from prior samples and on images; each cell mean ± std over seeds.
fn by_alpha(settings: &[Setting]) -> String {
    let absae: Vec<&Setting> =
        settings.iter().filter(|s| !s.first().classification.is_empty()).collect();
    if absae.is_empty() {
        return String::new();
    }
    let task = absae[0].first().task.clone();
    let paper = tasks::paper::for_task(&task);
    let alpha_header: String = ALPHAS.iter().map(|a| format!(" α = {a} |")).collect();
    let rule = format!("|---|---|---|{}\n", "---|".repeat(ALPHAS.len()));
    let mut out = format!(
        "\n## Classification accuracy against α (mean ± std over seeds; paper's Table 4 row below each τ it has)\n\n| setting | τ | n |{alpha_header}\n{rule}"
    );
    for s in &absae {
        let r = s.first();
        let cells: String = ALPHAS
            .iter()
            .map(|&a| format!(" {} |", s.spread(|r| classification_at(r, a)).cell(3)))
            .collect();
        let _ = writeln!(out, "| {} | {} | {} |{cells}", s.label(), r.tau, s.runs.len());
        if let Some(p) = paper.filter(|p| p.classification(r.tau, 0.0).is_some()) {
            let cells: String = ALPHAS
                .iter()
                .map(|&a| {
                    let v = p.classification(r.tau, a).map(|(acc, _)| format!("{acc:.3}"));
                    format!(" {} |", v.unwrap_or_else(|| "–".into()))
                })
                .collect();
            let _ = writeln!(out, "| paper | {} | – |{cells}", r.tau);
        }
    }
    type Rows = fn(&ComparedRun) -> &[RelationalRow];
    let kinds: [(&str, Rows); 2] = [
        ("from prior samples", |r| &r.relational),
        ("on images (decoded, re-encoded)", |r| &r.relational_images),
    ];
    for (kind, rows) in kinds {
        let mut table = String::new();
        for s in &absae {
            for &depth in &DEPTHS {
                let at = |a: f64| s.spread(|r| relational_at(rows(r), depth, a));
                if at(0.0).n == 0 {
                    continue;
                }
                let cells: String =
                    ALPHAS.iter().map(|&a| format!(" {} |", at(a).cell(3))).collect();
                let _ = writeln!(table, "| {} | {depth} | {} |{cells}", s.label(), s.runs.len());
            }
        }
        if !table.is_empty() {
            let _ = write!(
                out,
                "\n### Relational accuracy {kind}, by depth (mean ± std over seeds)\n\n| setting | depth | n |{alpha_header}\n{rule}{table}"
            );
        }
    }
    out
}

/// Classification accuracy at `alpha` (NaN when absent or nothing was accepted).
fn classification_at(run: &ComparedRun, alpha: f64) -> f64 {
    let row = run.classification.iter().find(|c| c.alpha == alpha);
    row.and_then(|c| c.accuracy).unwrap_or(f64::NAN)
}

fn relational_at(rows: &[RelationalRow], depth: usize, alpha: f64) -> f64 {
    let row = rows.iter().find(|r| r.depth == depth && r.alpha == alpha);
    row.and_then(|r| r.accuracy).unwrap_or(f64::NAN)
}

/// One panel per metric (DCI mean, MIG, SAP) against BCE per image; one line per model
/// through its settings in the order of their weight, each point the mean over seeds with
/// its standard deviation as an error bar.
pub fn tradeoff_panels(runs: &[ComparedRun]) -> Vec<Panel> {
    type Metric = (&'static str, fn(&Disentanglement) -> f64);
    let metrics: [Metric; 3] =
        [("DCI (mean of D, C, I)", |d| d.dci.mean), ("MIG", |d| d.mig), ("SAP", |d| d.sap)];
    let settings = settings(runs);
    metrics
        .iter()
        .map(|(name, metric)| Panel {
            title: format!("{name} against reconstruction error"),
            x_label: "reconstruction error (BCE per image)".into(),
            y_label: name.to_string(),
            series: models(runs)
                .into_iter()
                .map(|model| {
                    let mut of_model: Vec<&Setting> = settings
                        .iter()
                        .filter(|s| s.first().model == model && s.dci().n > 0)
                        .collect();
                    of_model.sort_by(|a, b| a.first().weight.total_cmp(&b.first().weight));
                    let spreads: Vec<(Spread, Spread)> = of_model
                        .iter()
                        .map(|s| (s.spread(|r| r.bce_per_image), s.spread(|r| r.metric(metric))))
                        .collect();
                    Series {
                        label: model.name().into(),
                        points: spreads.iter().map(|(x, y)| (x.mean, y.mean)).collect(),
                        y_spread: spreads.iter().map(|(_, y)| y.std).collect(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_the_mean_and_sample_std_of_the_finite_values() {
        let s = Spread::of([1.0, 2.0, 3.0, f64::NAN]);
        assert_eq!((s.mean, s.std, s.n), (2.0, 1.0, 3));
        assert_eq!(s.cell(2), "2.00 ± 1.00");
        assert_eq!(Spread::of([0.5]).cell(3), "0.500");
        assert_eq!(Spread::of([f64::NAN]).cell(3), "–");
    }
}
