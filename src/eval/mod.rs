//! Evaluation (SPEC §6): latent classification under the α rule, relational accuracy,
//! reconstruction error, and `eval.json`.

pub mod baseline;
pub mod classification;
pub mod metrics;
pub mod paper;
pub mod relational;
pub mod tables;

use std::path::Path;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::data::TaskData;
use crate::model::{AbsAe, Decoder, Mlp};
use crate::prior::{AlphaRule, Mixture};
use crate::relations::RelationSet;
use crate::run_dir::RunDir;
use crate::train::{Trainer, bce_with_logits};
use crate::{Error, Result};

pub use classification::{ClassificationRow, classify_codes};
pub use relational::{RelationalRow, relational_accuracy, relational_image_accuracy};

/// The α thresholds of the paper's tables.
pub const ALPHAS: [f64; 6] = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9];
/// Relation-chain depths of the paper's tables.
pub const DEPTHS: [usize; 3] = [1, 5, 10];

/// A trained run, loaded for inference on the plain (non-autodiff) device.
pub struct TrainedModel {
    pub config: Config,
    pub data: std::sync::Arc<TaskData>,
    pub test: Vec<usize>,
    pub relations: RelationSet,
    pub ae: AbsAe,
    pub rel: Mlp,
    pub mixture: Mixture,
    pub steps: usize,
    pub seconds: f64,
    pub backend: String,
    pub device: Device,
}

impl TrainedModel {
    /// From a trainer whose prior has switched to the mixture.
    pub fn from_trainer(trainer: Trainer) -> Result<TrainedModel> {
        let device = trainer.device.clone().inner();
        let mixture = trainer.mixture().cloned().ok_or_else(|| {
            Error::Invalid(
                "the run has not reached the mixture phase yet; nothing to evaluate".into(),
            )
        })?;
        Ok(TrainedModel {
            ae: trainer.nets.ae.valid().to_device(&device),
            rel: trainer.nets.rel.valid().to_device(&device),
            mixture,
            steps: trainer.state.step,
            seconds: trainer.state.seconds,
            backend: trainer.state.backend.clone(),
            test: match trainer.config.eval.max_test_images {
                0 => trainer.split.test,
                n => trainer.split.test.into_iter().take(n).collect(),
            },
            relations: trainer.relations,
            data: trainer.data,
            config: trainer.config,
            device,
        })
    }

    /// Loads the run in `dir` (its config and checkpoint), optionally on another data file.
    pub fn open(dir: &RunDir, data: Option<&Path>) -> Result<TrainedModel> {
        let config = run_config(dir, data)?;
        if config.is_baseline() {
            return Err(Error::file(
                dir.config(),
                format!(
                    "a {} baseline run has no mixture prior or relational learner; this needs an absae run",
                    config.model
                ),
            ));
        }
        let mut trainer = Trainer::new(config)?;
        trainer.load_checkpoint(&dir.checkpoint())?;
        TrainedModel::from_trainer(trainer)
    }

    /// Image layout of the task.
    pub fn image_shape(&self) -> crate::data::ImageShape {
        self.data.image_shape()
    }

    /// The test images of every component, in test-split order.
    pub fn test_items_by_component(&self) -> Vec<Vec<usize>> {
        let mut by = vec![Vec::new(); self.mixture.components()];
        for &i in &self.test {
            by[self.data.components[i]].push(i);
        }
        by
    }

    /// Codes (row-major n×d) of the task's images `items` (positions in its index list).
    pub fn encode_items(&self, items: &[usize]) -> Vec<f32> {
        items
            .chunks(INFERENCE_BATCH)
            .flat_map(|chunk| self.encode_pixels(&self.data.render_batch(chunk)))
            .collect()
    }

    /// Codes of images given as pixels (n·C·H·W values in [0, 1]).
    pub fn encode_pixels(&self, pixels: &[f32]) -> Vec<f32> {
        let [c, h, w] = self.image_shape();
        let mut codes = Vec::with_capacity(pixels.len() / (c * h * w) * self.mixture.dim);
        for chunk in pixels.chunks(INFERENCE_BATCH * c * h * w) {
            let images = Tensor::<4>::from_data(
                TensorData::new(chunk.to_vec(), [chunk.len() / (c * h * w), c, h, w]),
                &self.device,
            );
            codes.extend(
                self.ae
                    .encoder
                    .forward(images)
                    .into_data()
                    .try_into_vec::<f32>()
                    .expect("f32 codes"),
            );
        }
        codes
    }

    /// Decoded images (n·C·H·W values in [0, 1]) of codes (row-major n×d).
    pub fn decode(&self, codes: &[f32]) -> Vec<f32> {
        decode_codes(&self.ae.decoder, codes, self.mixture.dim, &self.device)
    }
}

/// Images (n·C·H·W values in [0, 1]) that `decoder` makes of codes (row-major n×d), in batches.
pub(crate) fn decode_codes(
    decoder: &Decoder,
    codes: &[f32],
    d: usize,
    device: &Device,
) -> Vec<f32> {
    let mut pixels = Vec::new();
    for chunk in codes.chunks(INFERENCE_BATCH * d) {
        let z =
            Tensor::<2>::from_data(TensorData::new(chunk.to_vec(), [chunk.len() / d, d]), device);
        let images = burn::tensor::activation::sigmoid(decoder.forward(z));
        pixels.extend(images.into_data().try_into_vec::<f32>().expect("f32 pixels"));
    }
    pixels
}

/// The config of the trained run in `dir`, on `data` if given.
pub(crate) fn run_config(dir: &RunDir, data: Option<&Path>) -> Result<Config> {
    let mut config = dir.read_config()?;
    if let Some(d) = data {
        config.data = Some(d.to_path_buf());
    }
    if !dir.checkpoint().exists() {
        return Err(Error::file(dir.checkpoint(), "missing: the run has not been trained"));
    }
    Ok(config)
}

/// Images per inference batch: large enough to keep the cores busy, small enough for memory.
const INFERENCE_BATCH: usize = 256;

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
    #[serde(default = "absae")]
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
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub factor_accuracy: std::collections::BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relational: Vec<RelationalRow>,
    /// Relational accuracy from encoded test images, judged on the re-encoded decoded image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relational_images: Vec<RelationalRow>,
    pub reconstruction: Reconstruction,
    /// DCI, MIG and SAP of the predicted components' factor classes (absent when turned off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disentanglement: Option<metrics::Disentanglement>,
    pub train: TrainSummary,
}

fn absae() -> String {
    crate::config::ABSAE.into()
}

/// How the model was trained.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainSummary {
    pub steps: usize,
    pub seconds: f64,
    pub backend: String,
}

/// Evaluates a trained model with `rule`.
pub fn evaluate(model: &TrainedModel, rule: AlphaRule) -> EvalReport {
    let (codes, reconstruction) = encode_and_reconstruct(
        &model.data,
        &model.test,
        &model.device,
        |x| model.ae.encoder.forward(x),
        |z| model.ae.decoder.forward(z),
    );
    let truth: Vec<usize> = model.test.iter().map(|&i| model.data.components[i]).collect();
    let classified = classify_codes(&model.mixture, &codes, &truth, rule, &ALPHAS);
    let factor_accuracy =
        classification::factor_accuracy(&model.data.task, &model.mixture, &codes, &truth);
    let relational = relational_accuracy(model, rule, model.config.eval.relational_samples);
    let relational_images =
        relational_image_accuracy(model, rule, model.config.eval.relational_samples);
    let disentanglement = predicted_class_disentanglement(model);
    EvalReport {
        task: model.config.task.clone(),
        model: model.config.model.clone(),
        tau: model.config.tau,
        alpha_rule: rule.name().into(),
        posterior_temperature: matches!(rule, AlphaRule::Posterior { .. })
            .then(|| rule.temperature()),
        preset: model.config.preset.clone(),
        data: model.data.dataset.describe(),
        test_images: model.test.len(),
        classification: classified,
        factor_accuracy,
        relational,
        relational_images,
        reconstruction,
        disentanglement,
        train: TrainSummary {
            steps: model.steps,
            seconds: model.seconds,
            backend: model.backend.clone(),
        },
    }
}

/// The SPEC's disentanglement metrics for the AbsAE: the representation of an image is the
/// class vector of its predicted component, the factors its true kept-factor classes, over
/// `eval.disentanglement_points` images drawn from the whole task (two thirds fit, one third test).
fn predicted_class_disentanglement(model: &TrainedModel) -> Option<metrics::Disentanglement> {
    let task = &model.data.task;
    disentanglement_of(&model.config, &model.data, task.kept.len(), |items| {
        let codes = model.encode_items(items);
        codes
            .chunks_exact(model.mixture.dim)
            .flat_map(|z| task.component_classes(model.mixture.classify(z).0))
            .map(|c| c as f64)
            .collect()
    })
}

/// DCI, MIG and SAP of the representation `represent` gives (`dim` values per image) for
/// `eval.disentanglement_points` images drawn from the whole task, against their kept-factor
/// classes; two thirds fit the classifiers and one third tests them. None when turned off or
/// when the task keeps a single factor.
pub(crate) fn disentanglement_of(
    config: &Config,
    data: &TaskData,
    dim: usize,
    represent: impl Fn(&[usize]) -> Vec<f64>,
) -> Option<metrics::Disentanglement> {
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
    let rep = metrics::Representation::new(represent(&items), dim, truth, task.kept.len()).ok()?;
    metrics::disentanglement(&rep, metrics::default_train_rows(points)).ok()
}

/// Step of the evaluation stream for the disentanglement sample (apart from the chains').
const DISENTANGLEMENT_STREAM: u64 = 2000;

/// Codes of the `test` images (row-major n×d), and the BCE per image and MSE per pixel of
/// their decodings; each image is rendered once for both.
pub(crate) fn encode_and_reconstruct(
    data: &TaskData,
    test: &[usize],
    device: &Device,
    encode: impl Fn(Tensor<4>) -> Tensor<2>,
    decode: impl Fn(Tensor<2>) -> Tensor<4>,
) -> (Vec<f32>, Reconstruction) {
    let [c, h, w] = data.image_shape();
    let (mut codes, mut bce, mut mse) = (Vec::new(), 0.0f64, 0.0f64);
    for items in test.chunks(INFERENCE_BATCH) {
        let b = items.len();
        let target =
            Tensor::<4>::from_data(TensorData::new(data.render_batch(items), [b, c, h, w]), device);
        let z = encode(target.clone());
        codes.extend(z.to_data().try_to_vec::<f32>().expect("f32 codes"));
        let logits = decode(z);
        bce +=
            bce_with_logits(logits.clone(), target.clone()).into_scalar::<f32>() as f64 * b as f64;
        let diff = burn::tensor::activation::sigmoid(logits) - target;
        mse += diff.powi_scalar(2).sum().into_scalar::<f32>() as f64;
    }
    let n = test.len().max(1);
    (
        codes,
        Reconstruction {
            bce_per_image: bce / n as f64,
            mse_per_pixel: mse / (n * c * h * w) as f64,
        },
    )
}

/// Evaluates the run in `dir` (the AbsAE or a baseline), writes `eval.json` and returns the
/// report. `rule` (the α rule's name and the posterior temperature, each in place of the run's
/// own) only applies to the AbsAE.
pub fn evaluate_run(dir: &RunDir, rule: &RuleChoice, data: Option<&Path>) -> Result<EvalReport> {
    let config = dir.read_config()?;
    if config.is_baseline() {
        let report = baseline::evaluate(&baseline::TrainedVae::open(dir, data)?);
        dir.write_eval(&serde_json::to_value(&report).expect("report serialises"))?;
        return Ok(report);
    }
    // A bad choice is reported before the model is loaded.
    let rule = AlphaRule::parse(
        rule.alpha_rule.as_deref().unwrap_or(&config.eval.alpha_rule),
        rule.posterior_temperature.unwrap_or(config.eval.posterior_temperature),
    )?;
    let model = TrainedModel::open(dir, data)?;
    let report = evaluate(&model, rule);
    dir.write_eval(&serde_json::to_value(&report).expect("report serialises"))?;
    Ok(report)
}

/// An α rule chosen at evaluation time; what is left out comes from the run's config.
#[derive(Clone, Debug, Default)]
pub struct RuleChoice {
    pub alpha_rule: Option<String>,
    pub posterior_temperature: Option<f64>,
}

/// Reads the run's `eval.json`.
pub fn read_eval(dir: &RunDir) -> Result<EvalReport> {
    let path = dir.eval();
    let text = std::fs::read_to_string(&path).map_err(|e| Error::file(&path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::file(&path, format!("not an eval.json of this version: {e}")))
}
