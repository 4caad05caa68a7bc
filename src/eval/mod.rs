//! Evaluation (SPEC §6): reconstruction and the disentanglement metrics for every model, and
//! for the AbsAE latent classification under the α rule and relational accuracy; `eval.json`.

pub mod baseline;
pub mod classification;
pub mod judge;
pub mod metrics;
pub mod ood;
pub mod probe;
pub mod relational;
pub mod tables;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::AlphaRuleKind;
use crate::inference::{AbsAeModel, INFERENCE_BATCH, Run};
use crate::prior::AlphaRule;
use crate::run_dir::RunDir;
use crate::{Error, Result};
use baseline::FittedBaseline;

pub use crate::tasks::paper::{ALPHAS, DEPTHS};
pub use classification::{ClassificationRow, classify_codes};
pub use relational::{RelationalRow, relational_accuracy, relational_image_accuracy};

/// Reconstruction error on the test split.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reconstruction {
    pub bce_per_image: f64,
    pub mse_per_pixel: f64,
}

/// Everything `eval` reports. The baselines have no mixture and no ReL, so their reports
/// leave out the α rule, the classification and the relational keys.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalReport {
    pub task: String,
    /// `absae`, `beta-vae` or `factor-vae`.
    pub model: String,
    pub tau: usize,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alpha_rule: String,
    /// The posterior rule's temperature (absent for the density rule and the baselines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posterior_temperature: Option<f64>,
    pub preset: String,
    pub data: String,
    pub test_images: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classification: Vec<ClassificationRow>,
    /// Accuracy of each kept factor at α = 0.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub factor_accuracy: BTreeMap<String, f64>,
    /// The same by the value of the dataset factor each kept factor reads (null where the
    /// test split has no image of that value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub factor_accuracy_by_value: BTreeMap<String, Vec<Option<f64>>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relational: Vec<RelationalRow>,
    /// Relational accuracy from encoded test images, judged on the re-encoded decoded image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relational_images: Vec<RelationalRow>,
    /// The image-level measures of plain reconstructions: the ceiling of `relational_images`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relational_images_ceiling: Option<relational::ImageCeiling>,
    pub reconstruction: Reconstruction,
    /// DCI, MIG and SAP of the model's representation (absent when turned off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disentanglement: Option<metrics::Disentanglement>,
    /// The same labels without the unlabelled images: logistic regression on raw pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<baseline::PixelBaseline>,
    /// Where the test split's out-of-distribution scores lie (the AbsAE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ood_reference: Option<ood::OodReference>,
    /// How well the score separates the test split from each `--ood` source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ood: Vec<ood::OodReport>,
    pub train: TrainSummary,
}

/// How the model was trained.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainSummary {
    pub steps: usize,
    pub seconds: f64,
    pub backend: String,
}

/// Evaluates a loaded run; `rule` scores the AbsAE's codes (the baselines have no α rule).
pub fn evaluate(run: &Run, rule: AlphaRule) -> EvalReport {
    evaluate_with_ood(run, rule, &[]).map(|(report, _)| report).expect("no source to read")
}

/// Evaluates a loaded run, and scores the images of each out-of-distribution source against
/// its test split (an AbsAE run); returns the report and every scored image's chosen score.
pub fn evaluate_with_ood(
    run: &Run,
    rule: AlphaRule,
    sources: &[String],
) -> Result<(EvalReport, Vec<ood::ScoredImage>)> {
    let config = &run.ctx.config;
    if !sources.is_empty() {
        run.absae()?;
    }
    // Every source is read before the evaluation's work, so a bad one fails at once.
    let sources: Vec<ood::Source> = sources
        .iter()
        .map(|s| ood::read_source(s, run.image_shape(), config.seed))
        .collect::<Result<_>>()?;
    // The pixel baseline is scored in the same pass over the test images as the codes, so
    // each is rendered once (Shapes3D's ray caster made rendering a third of the evaluation).
    let mut baseline = run.model.absae().and_then(|_| FittedBaseline::fit(run));
    let (codes, errors, reconstruction) = encode_and_reconstruct(run, |items, pixels| {
        if let Some(b) = baseline.as_mut() {
            b.score(run, items, pixels);
        }
    });
    let mut report = EvalReport {
        task: config.task.clone(),
        model: config.model.name().into(),
        tau: config.tau,
        alpha_rule: String::new(),
        posterior_temperature: None,
        preset: config.preset.name().into(),
        data: run.ctx.data.dataset.describe(),
        test_images: run.test().len(),
        classification: Vec::new(),
        factor_accuracy: BTreeMap::new(),
        factor_accuracy_by_value: BTreeMap::new(),
        relational: Vec::new(),
        relational_images: Vec::new(),
        relational_images_ceiling: None,
        reconstruction,
        disentanglement: None,
        baseline: baseline.as_ref().map(FittedBaseline::report),
        ood_reference: None,
        ood: Vec::new(),
        train: TrainSummary {
            steps: run.state.step,
            seconds: run.state.seconds,
            backend: run.state.backend.clone(),
        },
    };
    let mut scored = Vec::new();
    if let Some(absae) = run.model.absae() {
        method_tables(run, absae, rule, &codes, &mut report);
        let test = ood::scores_of(absae, rule, &codes, errors, None);
        let reference = ood::reference_of(&test);
        scored.extend(ood::scored_images("test", &test_files(run), &test));
        for source in &sources {
            let scores = ood::score_pixels(run, absae, rule, &source.pixels, &reference);
            report.ood.push(ood::report(source, &scores, &test));
            scored.extend(ood::scored_images(&source.name, &source.files, &scores));
        }
        report.ood_reference = Some(reference);
    }
    report.disentanglement = disentanglement(run);
    if let Some(e) = run.ctx.data.dataset.read_error() {
        return Err(e);
    }
    Ok((report, scored))
}

/// How `ood-scores.csv` names the test images: their files, or `#index` in the dataset.
fn test_files(run: &Run) -> Vec<String> {
    let data = &run.ctx.data;
    run.test()
        .iter()
        .map(|&i| {
            data.dataset
                .file_name(data.indices[i])
                .unwrap_or_else(|| format!("#{}", data.indices[i]))
        })
        .collect()
}

/// The AbsAE's own parts of the report: classification under the α rule, per-factor
/// accuracy, relational accuracy from prior samples and from test images.
fn method_tables(
    run: &Run,
    absae: &AbsAeModel,
    rule: AlphaRule,
    codes: &[f32],
    report: &mut EvalReport,
) {
    let samples = run.ctx.config.eval.relational_samples;
    let truth: Vec<usize> = run.test().iter().map(|&i| run.ctx.data.components[i]).collect();
    report.alpha_rule = rule.name().into();
    report.posterior_temperature =
        matches!(rule, AlphaRule::Posterior { .. }).then(|| rule.temperature());
    report.classification = classify_codes(&absae.mixture, codes, &truth, rule, &ALPHAS);
    report.factor_accuracy =
        classification::factor_accuracy(&absae.task, &absae.mixture, codes, &truth);
    let data = &run.ctx.data;
    let values: Vec<Vec<usize>> =
        run.test().iter().map(|&i| data.dataset.factor_classes(data.indices[i])).collect();
    report.factor_accuracy_by_value = classification::factor_accuracy_by_value(
        &absae.task,
        &absae.mixture,
        codes,
        &truth,
        &values,
    );
    report.relational = relational_accuracy(run, absae, rule, samples);
    let (rows, ceiling) = relational_image_accuracy(run, absae, rule, samples);
    (report.relational_images, report.relational_images_ceiling) = (rows, Some(ceiling));
}

/// DCI, MIG and SAP of the model's representation for `eval.disentanglement_points` images
/// drawn from the whole task, against their kept-factor classes; two thirds fit the
/// classifiers and one third tests them. None when turned off or when the task keeps a single
/// factor.
fn disentanglement(run: &Run) -> Option<metrics::Disentanglement> {
    let (config, data) = (&run.ctx.config, &run.ctx.data);
    let points = config.eval.disentanglement_points.min(data.len());
    // With one kept factor (HWF) there is nothing to disentangle, and DCI's disentanglement
    // is undefined (an entropy in base 1); the paper leaves HWF out of its table 1 for this.
    if points < 3 || data.task.kept.len() < 2 {
        return None;
    }
    let mut rng = crate::rng::stream(config.seed, crate::rng::Stream::Eval, DISENTANGLEMENT_STREAM);
    let items = rand::seq::index::sample(&mut rng, data.len(), points).into_vec();
    let task = &data.task;
    let truth: Vec<i64> = items
        .iter()
        .flat_map(|&i| task.component_classes(data.components[i]))
        .map(|c| c as i64)
        .collect();
    let (values, dim) = run.model.representation(&run.encode_items(&items));
    let rep = metrics::Representation::new(values, dim, truth, task.kept.len()).ok()?;
    metrics::disentanglement(&rep, metrics::default_train_rows(points)).ok()
}

/// Step of the evaluation stream for the disentanglement sample (apart from the chains').
const DISENTANGLEMENT_STREAM: u64 = 2000;

/// Codes of the test images (row-major n×d), each one's reconstruction error, and the mean
/// BCE per image and MSE per pixel of their decodings; each image is rendered once for all,
/// and each batch's items and pixels are also handed to `also`.
fn encode_and_reconstruct(
    run: &Run,
    mut also: impl FnMut(&[usize], &[f32]),
) -> (Vec<f32>, Vec<f64>, Reconstruction) {
    let (data, len) = (&run.ctx.data, run.ctx.data.image_len());
    let test = run.test();
    let (mut codes, mut errors, mut squared) = (Vec::new(), Vec::new(), 0.0f64);
    for items in test.chunks(INFERENCE_BATCH) {
        let pixels = data.render_batch(items);
        also(items, &pixels);
        let (chunk_codes, logits) = run.encode_and_decode(&pixels);
        codes.extend(chunk_codes);
        for (bce, sq) in ood::image_errors(&logits, &pixels, len) {
            errors.push(bce);
            squared += sq;
        }
    }
    let n = test.len().max(1) as f64;
    let reconstruction = Reconstruction {
        bce_per_image: errors.iter().sum::<f64>() / n,
        mse_per_pixel: squared / (n * len as f64),
    };
    (codes, errors, reconstruction)
}

/// An α rule chosen at evaluation time; what is left out comes from the run's config.
#[derive(Clone, Debug, Default)]
pub struct RuleChoice {
    pub alpha_rule: Option<AlphaRuleKind>,
    pub posterior_temperature: Option<f64>,
}

/// Evaluates the run in `dir`, writes `eval.json` (and with OOD `sources`, `ood-scores.csv`)
/// and returns the report. `rule` (the α rule and the posterior temperature, each in place of
/// the run's own) applies to the AbsAE.
pub fn evaluate_run(
    dir: &RunDir,
    rule: &RuleChoice,
    data: Option<&Path>,
    sources: &[String],
) -> Result<EvalReport> {
    let run = Run::open(dir, data)?;
    let mut eval = run.ctx.config.eval.clone();
    eval.alpha_rule = rule.alpha_rule.unwrap_or(eval.alpha_rule);
    eval.posterior_temperature = rule.posterior_temperature.unwrap_or(eval.posterior_temperature);
    let (report, scored) = evaluate_with_ood(&run, eval.alpha_rule(), sources)?;
    if !sources.is_empty() {
        ood::write_scores(&dir.ood_scores(), &scored)?;
    }
    write_eval(dir, &report)?;
    Ok(report)
}

/// Writes `report` as the run's `eval.json`, atomically.
pub fn write_eval(dir: &RunDir, report: &EvalReport) -> Result<()> {
    dir.write_eval(&serde_json::to_value(report).expect("reports serialise"))
}

/// Reads the run's `eval.json`.
pub fn read_eval(dir: &RunDir) -> Result<EvalReport> {
    let path = dir.eval();
    let text = std::fs::read_to_string(&path).map_err(|e| Error::file(&path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::file(&path, format!("not an eval.json of this version: {e}")))
}
