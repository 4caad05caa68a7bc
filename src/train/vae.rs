//! The baselines of SPEC §7: β-VAE and FactorVAE with the AbsAE's encoder and decoder, trained
//! as disentanglement_lib trains them. Per step: the VAE update (reconstruction BCE summed per
//! image, plus β·KL for β-VAE, or KL + γ·TC for FactorVAE), then for FactorVAE the update of the
//! discriminator that tells codes from codes with each dimension shuffled across the batch.

use std::path::Path;
use std::sync::Arc;

use burn::optim::{GradientsParams, ModuleOptimizer};

use super::adam::AdamSettings;
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use burn::tensor::activation::log_softmax;
use rand::seq::{IndexedRandom, SliceRandom};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::{
    StepLosses, Training, adam, bce_with_logits, read_sections, record_bytes, scalar,
    training_device, write_sections,
};
use crate::config::Config;
use crate::data::{Split, TaskData};
use crate::model::{self, Architecture, Mlp, Vae};
use crate::rng::{Stream, stream};
use crate::{Error, Result};

/// Which baseline, with its weight.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Baseline {
    /// β-VAE: reconstruction + β·KL.
    BetaVae { beta: f64 },
    /// FactorVAE: reconstruction + KL + γ·total correlation.
    FactorVae { gamma: f64 },
}

impl Baseline {
    /// The baseline `config` names, or an error for the AbsAE.
    pub fn from_config(config: &Config) -> Result<Baseline> {
        match config.model.as_str() {
            "beta-vae" => Ok(Baseline::BetaVae { beta: config.train.beta }),
            "factor-vae" => Ok(Baseline::FactorVae { gamma: config.train.gamma }),
            other => Err(Error::Invalid(format!("model '{other}' is not a VAE baseline"))),
        }
    }
}

/// What a baseline checkpoint holds besides weights and optimiser states.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VaeState {
    pub step: usize,
    pub seconds: f64,
    pub backend: String,
}

/// A baseline training run and its state.
pub struct VaeTrainer {
    pub config: Config,
    pub baseline: Baseline,
    pub data: Arc<TaskData>,
    pub split: Split,
    pub arch: Architecture,
    pub device: Device,
    pub vae: Vae,
    /// FactorVAE's discriminator; None for β-VAE.
    pub disc: Option<Mlp>,
    opt_vae: ModuleOptimizer,
    opt_disc: ModuleOptimizer,
    pub state: VaeState,
}

/// FactorVAE's discriminator optimiser: Adam with β1 = 0.5, β2 = 0.9 (disentanglement_lib).
fn discriminator_adam() -> ModuleOptimizer {
    AdamSettings { beta_1: 0.5, beta_2: 0.9, epsilon: 1e-8 }.init()
}

impl VaeTrainer {
    /// A baseline trainer at step 0 for `config` (whose `model` names a baseline).
    pub fn new(config: Config) -> Result<VaeTrainer> {
        let baseline = Baseline::from_config(&config)?;
        let data = Arc::new(TaskData::open(&config.task, config.data.as_deref())?);
        let split = Split::new(&data.components, data.task.components(), config.tau, config.seed)?;
        let arch = Architecture::for_task(&config.task)?;
        let (plain, backend) = training_device()?;
        let device = plain.autodiff();
        device.seed(config.seed);
        let vae = Vae::new(&arch, &device);
        let disc = matches!(baseline, Baseline::FactorVae { .. })
            .then(|| model::total_correlation_discriminator(&arch, &device));
        let state = VaeState { step: 0, seconds: 0.0, backend: backend.into() };
        Ok(VaeTrainer {
            config,
            baseline,
            data,
            split,
            arch,
            device,
            vae,
            disc,
            opt_vae: adam(),
            opt_disc: discriminator_adam(),
            state,
        })
    }

    fn image_tensor(&self, pixels: Vec<f32>, n: usize) -> Tensor<4> {
        let [c, h, w] = self.arch.image;
        Tensor::from_data(TensorData::new(pixels, [n, c, h, w]), &self.device)
    }

    /// A [b, d] tensor of values drawn on the host, where every draw comes from a seeded stream.
    fn host_tensor(&self, values: Vec<f32>, b: usize) -> Tensor<2> {
        Tensor::from_data(TensorData::new(values, [b, self.arch.latent]), &self.device)
    }

    /// Runs one step and returns its losses.
    pub fn step(&mut self) -> Result<StepLosses> {
        let s = self.state.step as u64;
        let (seed, b, d) = (self.config.seed, self.config.train.batch_size, self.arch.latent);
        let mut rng = stream(seed, Stream::Batch, s);
        let items: Vec<usize> = (0..b)
            .map(|_| *self.split.train.choose(&mut rng).expect("train split is not empty"))
            .collect();
        let x = self.image_tensor(self.data.render_batch(&items), b);

        let (mean, log_var) = self.vae.posterior(x.clone());
        let mut noise_rng = stream(seed, Stream::Reparameterise, s);
        let eps: Vec<f32> = (0..b * d).map(|_| StandardNormal.sample(&mut noise_rng)).collect();
        let z = mean.clone() + log_var.clone().mul_scalar(0.5).exp() * self.host_tensor(eps, b);
        let recon = bce_with_logits(self.vae.decoder.forward(z.clone()), x);
        let kl = gaussian_kl(mean, log_var);
        let mut losses =
            StepLosses { recon: Some(scalar(&recon)), kl: Some(scalar(&kl)), ..Default::default() };
        let loss = match (self.baseline, &self.disc) {
            (Baseline::BetaVae { beta }, _) => recon + kl.mul_scalar(beta),
            (Baseline::FactorVae { gamma }, Some(disc)) => {
                let tc = total_correlation(disc.forward(z.clone()));
                losses.total_correlation = Some(scalar(&tc));
                recon + kl + tc.mul_scalar(gamma)
            }
            (Baseline::FactorVae { .. }, None) => {
                unreachable!("FactorVAE trainers have a discriminator")
            }
        };
        let grads = GradientsParams::from_grads(loss.backward(), &self.vae);
        self.vae = self.opt_vae.step(self.config.train.lr, self.vae.clone(), grads);

        if let Some(disc) = self.disc.clone() {
            let codes = z.detach();
            let permuted = self.host_tensor(
                permute_dimensions(
                    &codes.to_data().try_to_vec::<f32>().expect("f32 codes"),
                    d,
                    s,
                    seed,
                ),
                b,
            );
            let disc_loss = discriminator_loss(disc.forward(codes), disc.forward(permuted));
            losses.discriminator = Some(scalar(&disc_loss));
            let grads = GradientsParams::from_grads(disc_loss.backward(), &disc);
            self.disc = Some(self.opt_disc.step(self.config.train.lr, disc, grads));
        }
        self.state.step += 1;
        Ok(losses)
    }

    /// Writes the checkpoint atomically.
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        let mut sections = vec![
            serde_json::to_vec(&self.state).expect("train state serialises"),
            record_bytes(self.vae.valid().into_record().into_bytes(), path)?,
            record_bytes(self.opt_vae.into_bytes(), path)?,
        ];
        if let Some(disc) = &self.disc {
            sections.push(record_bytes(disc.valid().into_record().into_bytes(), path)?);
            sections.push(record_bytes(self.opt_disc.into_bytes(), path)?);
        }
        write_sections(path, &sections)
    }

    /// Restores weights, optimiser states and the state from a checkpoint.
    pub fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        let sections = read_sections(path, if self.disc.is_some() { 5 } else { 3 })?;
        let bad = |e: &dyn std::fmt::Display| Error::file(path, format!("corrupt checkpoint: {e}"));
        self.state = serde_json::from_slice(&sections[0]).map_err(|e| bad(&e))?;
        let record = |i: usize| {
            ModuleRecord::from_bytes(Bytes::from_bytes_vec(sections[i].clone()))
                .map_err(|e| bad(&e))
        };
        let optim = |o: ModuleOptimizer, i: usize| {
            o.from_bytes(Bytes::from_bytes_vec(sections[i].clone())).map_err(|e| bad(&e))
        };
        self.vae = self.vae.clone().try_load_record(record(1)?).map_err(|e| bad(&e))?;
        self.opt_vae = optim(adam(), 2)?;
        if let Some(disc) = self.disc.take() {
            self.disc = Some(disc.try_load_record(record(3)?).map_err(|e| bad(&e))?);
            self.opt_disc = optim(discriminator_adam(), 4)?;
        }
        Ok(())
    }
}

impl Training for VaeTrainer {
    fn config(&self) -> &Config {
        &self.config
    }
    fn steps_done(&self) -> usize {
        self.state.step
    }
    fn total_steps(&self) -> usize {
        self.config.train.steps
    }
    fn seconds(&self) -> f64 {
        self.state.seconds
    }
    fn add_seconds(&mut self, seconds: f64) {
        self.state.seconds += seconds;
    }
    fn step(&mut self) -> Result<StepLosses> {
        VaeTrainer::step(self)
    }
    fn save_checkpoint(&self, path: &Path) -> Result<()> {
        VaeTrainer::save_checkpoint(self, path)
    }
    fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        VaeTrainer::load_checkpoint(self, path)
    }
}

/// KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ (μ² + σ² − log σ² − 1), summed over dimensions and
/// averaged over the batch.
pub fn gaussian_kl(mean: Tensor<2>, log_var: Tensor<2>) -> Tensor<1> {
    let terms = mean.powi_scalar(2) + log_var.clone().exp() - log_var - 1.0;
    terms.sum_dim(1).mean().mul_scalar(0.5)
}

/// FactorVAE's estimate of the total correlation from the discriminator's logits on codes:
/// the mean of logit("from q(z)") − logit("permuted").
pub fn total_correlation(logits: Tensor<2>) -> Tensor<1> {
    let b = logits.dims()[0];
    (logits.clone().slice([0..b, 0..1]) - logits.slice([0..b, 1..2])).mean()
}

/// Cross-entropy of the discriminator: codes are class 0, permuted codes class 1, each half
/// of the loss weighted ½.
pub fn discriminator_loss(on_codes: Tensor<2>, on_permuted: Tensor<2>) -> Tensor<1> {
    let b = on_codes.dims()[0];
    let real = log_softmax(on_codes, 1).slice([0..b, 0..1]).mean();
    let shuffled = log_softmax(on_permuted, 1).slice([0..b, 1..2]).mean();
    (real + shuffled).mul_scalar(-0.5)
}

/// Codes (row-major n×d) with each dimension shuffled independently across the rows: a sample
/// of the product of the marginals.
pub fn permute_dimensions(codes: &[f32], d: usize, step: u64, seed: u64) -> Vec<f32> {
    let n = codes.len() / d;
    let mut rng = stream(seed, Stream::Permute, step);
    let mut out = vec![0.0; codes.len()];
    let mut order: Vec<usize> = (0..n).collect();
    for j in 0..d {
        order.shuffle(&mut rng);
        for (row, &from) in order.iter().enumerate() {
            out[row * d + j] = codes[from * d + j];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor2(values: &[f32], rows: usize) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [rows, values.len() / rows]),
            &Device::flex(),
        )
    }

    fn value(t: Tensor<1>) -> f32 {
        t.into_scalar::<f32>()
    }

    #[test]
    fn kl_matches_the_closed_form() {
        // One row, μ = (1, 0), log σ² = (0, ln 2): ½[(1 + 1 − 0 − 1) + (0 + 2 − ln 2 − 1)].
        let kl = value(gaussian_kl(tensor2(&[1.0, 0.0], 1), tensor2(&[0.0, 2f32.ln()], 1)));
        let want = 0.5 * (1.0 + (1.0 - 2f32.ln()));
        assert!((kl - want).abs() < 1e-6, "{kl} vs {want}");
        assert!(value(gaussian_kl(tensor2(&[0.0; 4], 2), tensor2(&[0.0; 4], 2))).abs() < 1e-7);
    }

    #[test]
    fn total_correlation_and_discriminator_loss_by_hand() {
        let logits = tensor2(&[2.0, 0.0, 0.0, 1.0], 2);
        assert!((value(total_correlation(logits.clone())) - 0.5).abs() < 1e-6);
        // log_softmax of (2, 0): class 0 → −ln(1 + e⁻²); of (0, 1): class 0 → −ln(1 + e).
        let real = -((-(1.0 + (-2f32).exp()).ln()) + (-(1.0 + 1f32.exp()).ln())) / 2.0;
        let perm = tensor2(&[0.0, 0.0, 0.0, 0.0], 2);
        let want = 0.5 * (real + 2f32.ln());
        assert!((value(discriminator_loss(logits, perm)) - want).abs() < 1e-6);
    }

    #[test]
    fn permutation_keeps_each_column_and_is_seeded() {
        let codes: Vec<f32> = (0..40).map(|v| v as f32).collect();
        let a = permute_dimensions(&codes, 4, 3, 0);
        assert_eq!(a, permute_dimensions(&codes, 4, 3, 0));
        assert_ne!(a, permute_dimensions(&codes, 4, 4, 0));
        assert_ne!(a, codes);
        for j in 0..4 {
            let mut col: Vec<f32> = a.iter().skip(j).step_by(4).copied().collect();
            col.sort_by(f32::total_cmp);
            let want: Vec<f32> = codes.iter().skip(j).step_by(4).copied().collect();
            assert_eq!(col, want);
        }
    }
}
