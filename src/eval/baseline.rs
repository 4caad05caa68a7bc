//! Evaluating the β-VAE and FactorVAE baselines (SPEC §7): reconstruction error and the
//! disentanglement metrics of the latent means; they have no classification or relations.

use std::path::Path;
use std::sync::Arc;

use burn::prelude::*;

use super::{
    EvalReport, INFERENCE_BATCH, Reconstruction, TrainSummary, decode_codes, disentanglement_of,
    encode_and_reconstruct, run_config,
};
use crate::Result;
use crate::config::Config;
use crate::data::TaskData;
use crate::model::Vae;
use crate::run_dir::RunDir;
use crate::train::vae::VaeTrainer;

/// A trained baseline, loaded for inference on the plain (non-autodiff) device.
pub struct TrainedVae {
    pub config: Config,
    pub data: Arc<TaskData>,
    pub test: Vec<usize>,
    pub vae: Vae,
    /// Latent dimensions.
    pub latent: usize,
    pub steps: usize,
    pub seconds: f64,
    pub backend: String,
    pub device: Device,
}

impl TrainedVae {
    /// From a baseline trainer.
    pub fn from_trainer(trainer: VaeTrainer) -> TrainedVae {
        let device = trainer.device.clone().inner();
        let test = match trainer.config.eval.max_test_images {
            0 => trainer.split.test,
            n => trainer.split.test.into_iter().take(n).collect(),
        };
        TrainedVae {
            vae: trainer.vae.valid().to_device(&device),
            latent: trainer.arch.latent,
            steps: trainer.state.step,
            seconds: trainer.state.seconds,
            backend: trainer.state.backend,
            config: trainer.config,
            data: trainer.data,
            test,
            device,
        }
    }

    /// Loads the baseline run in `dir`, optionally on another data file.
    pub fn open(dir: &RunDir, data: Option<&Path>) -> Result<TrainedVae> {
        let mut trainer = VaeTrainer::new(run_config(dir, data)?)?;
        trainer.load_checkpoint(&dir.checkpoint())?;
        Ok(TrainedVae::from_trainer(trainer))
    }

    /// Posterior means (row-major n×d) of the task's images `items`.
    pub fn means(&self, items: &[usize]) -> Vec<f32> {
        self.posteriors(items).0
    }

    /// Posterior means and log-variances (each row-major n×d) of the task's images `items`.
    pub fn posteriors(&self, items: &[usize]) -> (Vec<f32>, Vec<f32>) {
        let [c, h, w] = self.data.image_shape();
        let (mut means, mut log_vars) = (Vec::new(), Vec::new());
        for chunk in items.chunks(INFERENCE_BATCH) {
            let x = Tensor::<4>::from_data(
                TensorData::new(self.data.render_batch(chunk), [chunk.len(), c, h, w]),
                &self.device,
            );
            let (mean, log_var) = self.vae.posterior(x);
            means.extend(mean.into_data().try_into_vec::<f32>().expect("f32 means"));
            log_vars.extend(log_var.into_data().try_into_vec::<f32>().expect("f32 log-variances"));
        }
        (means, log_vars)
    }

    /// Decoded images (n·C·H·W values in [0, 1]) of codes (row-major n×d).
    pub fn decode(&self, codes: &[f32]) -> Vec<f32> {
        decode_codes(&self.vae.decoder, codes, self.latent, &self.device)
    }

    /// Reconstruction error of the test split, decoding the posterior means.
    pub fn reconstruction(&self) -> Reconstruction {
        encode_and_reconstruct(
            &self.data,
            &self.test,
            &self.device,
            |x| self.vae.posterior(x).0,
            |z| self.vae.decoder.forward(z),
        )
        .1
    }
}

/// Reconstruction and disentanglement (of the latent means) of a baseline.
pub fn evaluate(model: &TrainedVae) -> EvalReport {
    let disentanglement = disentanglement_of(&model.config, &model.data, model.latent, |items| {
        model.means(items).into_iter().map(f64::from).collect()
    });
    EvalReport {
        task: model.config.task.clone(),
        model: model.config.model.clone(),
        tau: model.config.tau,
        alpha_rule: String::new(),
        posterior_temperature: None,
        preset: model.config.preset.clone(),
        data: model.data.dataset.describe(),
        test_images: model.test.len(),
        classification: Vec::new(),
        factor_accuracy: Default::default(),
        relational: Vec::new(),
        relational_images: Vec::new(),
        reconstruction: model.reconstruction(),
        disentanglement,
        train: TrainSummary {
            steps: model.steps,
            seconds: model.seconds,
            backend: model.backend.clone(),
        },
    }
}
