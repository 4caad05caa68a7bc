//! The training loop (SPEC §5): per step an autoencoder update (reconstruction + β·adversarial,
//! plus the default mode's supervised and consistency terms), a discriminator update, and after
//! warm-up the ReL updates; separate Adam optimisers; periodic atomic checkpoints; resume.
//! The baselines' trainer lives in [`vae`]; [`train`] drives either through [`Training`].

pub mod adam;
pub mod vae;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use burn::tensor::activation::{log_softmax, softplus};
use rand::Rng;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::data::augment::{PixelNoise, labelled_view, makes_views_of, strong_view};
use crate::data::{ImageShape, Split, TaskData};
use crate::model::{self, AbsAe, Architecture, Encoder, Mlp};
use crate::prior::{Mixture, MixtureTensors, Prior};
use crate::relations::{Application, RelationSet};
use crate::rng::{Stream, stream};
use crate::run_dir::RunDir;
use crate::{Error, Result};
use adam::adam;

/// The three trained networks.
#[derive(Clone, Debug)]
pub struct Networks {
    pub ae: AbsAe,
    pub disc: Mlp,
    pub rel: Mlp,
}

impl Networks {
    /// Fresh networks for `arch`, initialised from `seed`.
    pub fn new(
        arch: &Architecture,
        relations: &RelationSet,
        seed: u64,
        device: &Device,
    ) -> Networks {
        device.seed(seed);
        Networks {
            ae: AbsAe::new(arch, device),
            disc: model::discriminator(arch, device),
            rel: model::relational_learner(
                arch,
                relations.input_width(arch.latent),
                relations.outputs(),
                device,
            ),
        }
    }
}

/// What a checkpoint holds besides weights and optimiser states.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainState {
    /// Steps completed.
    pub step: usize,
    /// Training seconds so far (over all sessions of a resumed run).
    pub seconds: f64,
    pub prior: Prior,
    pub backend: String,
}

/// Losses of one step, for the progress bar and `metrics.jsonl`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StepLosses {
    pub recon: Option<f32>,
    pub adversarial: Option<f32>,
    pub discriminator: Option<f32>,
    pub relational: Option<f32>,
    pub supervised: Option<f32>,
    pub consistency: Option<f32>,
    /// KL divergence of the VAE posterior from N(0, I) (baselines).
    pub kl: Option<f32>,
    /// FactorVAE's discriminator estimate of the total correlation.
    pub total_correlation: Option<f32>,
}

/// Everything a training run needs, and its state.
pub struct Trainer {
    pub config: Config,
    pub data: Arc<TaskData>,
    pub split: Split,
    pub relations: RelationSet,
    pub arch: Architecture,
    pub device: Device,
    pub nets: Networks,
    opt_ae: ModuleOptimizer,
    opt_disc: ModuleOptimizer,
    opt_rel: ModuleOptimizer,
    pub state: TrainState,
    mixture_tensors: Option<MixtureTensors>,
    noise: PixelNoise,
    /// Codes of the labelled images once the autoencoder has stopped (it no longer changes, so
    /// a resumed run recomputes the same codes).
    frozen_labelled_codes: Option<Vec<f32>>,
    /// Pixels of the labelled images, in `split.labelled` order: every step of the default
    /// mode and every mixture refresh needs them, and rendering them again cost Shapes3D a
    /// tenth of its step time.
    labelled_pixels: Vec<f32>,
}

/// The device training runs on: flex (CPU) by default, CUDA with the `cuda` feature.
pub fn training_device() -> Result<(Device, &'static str)> {
    #[cfg(feature = "cuda")]
    {
        cuda_driver_present()?;
        Ok((Device::cuda(0), "cuda"))
    }
    #[cfg(not(feature = "cuda"))]
    {
        Ok((Device::flex(), "flex"))
    }
}

/// cudarc panics on a worker thread when it cannot load the NVIDIA driver, which would leave
/// the user a backtrace; looking for the library first gives one clear error instead.
#[cfg(feature = "cuda")]
fn cuda_driver_present() -> Result<()> {
    let loads = |name: &str| {
        let name = std::ffi::CString::new(name).expect("no NUL in a library name");
        // SAFETY: dlopen with a valid C string; the handle is only tested, never used.
        !unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_LAZY) }.is_null()
    };
    if ["libcuda.so.1", "libcuda.so"].into_iter().any(loads) {
        Ok(())
    } else {
        Err(Error::Invalid("this relatent was built with --features cuda, but no NVIDIA driver (libcuda.so) is installed here; build without the feature to train on the CPU".into()))
    }
}

impl Trainer {
    /// A trainer at step 0 for `config`.
    pub fn new(config: Config) -> Result<Trainer> {
        let data = Arc::new(TaskData::open(&config.task, config.data.as_deref())?);
        let split = Split::new(&data.components, data.task.components(), config.tau, config.seed)?;
        let relations = RelationSet::for_task(&data.task, &config.relations)?;
        let arch = Architecture::for_task(&config.task)?;
        let (plain, backend) = training_device()?;
        let device = plain.autodiff();
        let nets = Networks::new(&arch, &relations, config.seed, &device);
        let noise = PixelNoise::from_config(
            &config.train.augment,
            config.train.noise_std,
            config.train.dropout,
        );
        let state = TrainState {
            step: 0,
            seconds: 0.0,
            prior: Prior::Uniform { dim: arch.latent },
            backend: backend.into(),
        };
        let labelled_pixels = data.render_batch(&split.labelled);
        Ok(Trainer {
            config,
            data,
            split,
            relations,
            arch,
            device,
            nets,
            opt_ae: adam(),
            opt_disc: adam(),
            opt_rel: adam(),
            state,
            mixture_tensors: None,
            noise,
            frozen_labelled_codes: None,
            labelled_pixels,
        })
    }

    /// Steps of the whole schedule: autoencoder steps, then ReL-only fine-tuning steps.
    pub fn total_steps(&self) -> usize {
        self.config.train.steps + self.config.improve.rel_finetune_steps
    }

    /// How many of the labelled images the task's augmentation makes views of, and of how
    /// many; None when labelled images are not augmented (the paper mode, or no augmentation).
    /// Shapes3D's repaint has to find the room's palette hues, so on an official file whose
    /// colours it does not recognise this is how a user learns that the views do nothing.
    pub fn labelled_view_coverage(&self) -> Option<(usize, usize)> {
        use rayon::prelude::*;
        let aug =
            self.labelled_augmentation().filter(|_| self.config.improve.supervised_weight > 0.0)?;
        let shape = self.data.image_shape();
        let viewable = self
            .labelled_pixels
            .par_chunks_exact(self.data.dataset.image_len())
            .filter(|image| makes_views_of(image, shape, aug))
            .count();
        Some((viewable, self.split.labelled.len()))
    }

    /// The task's augmentation when the config applies it to the labelled images.
    fn labelled_augmentation(&self) -> Option<&crate::data::task::Augmentation> {
        self.data.task.augment.as_ref().filter(|_| self.config.improve.augment_labelled)
    }

    /// The mixture, once the prior has switched.
    pub fn mixture(&self) -> Option<&Mixture> {
        match &self.state.prior {
            Prior::Mixture(m) => Some(m),
            Prior::Uniform { .. } => None,
        }
    }

    /// Runs one step of the schedule and returns its losses.
    pub fn step(&mut self) -> Result<StepLosses> {
        let s = self.state.step;
        let (warmup, steps) = (self.config.train.warmup_steps, self.config.train.steps);
        let switched = s >= warmup;
        let refresh = self.config.prior.refresh_every;
        let due_refresh = refresh > 0 && s > warmup && (s - warmup) % refresh == 0 && s < steps;
        // A refreshed mixture gets one last fit with the paper's shrink when the autoencoder
        // stops, so the final components are as tight as the paper's.
        let final_fit = refresh > 0 && s == steps;
        if (switched && self.mixture().is_none()) || due_refresh {
            self.fit_mixture(false)?;
        } else if final_fit {
            self.fit_mixture(true)?;
        }
        let mut losses = StepLosses::default();
        if s < steps {
            self.autoencoder_and_discriminator_step(&mut losses);
        }
        if switched {
            let mut total = 0.0;
            for u in 0..self.config.improve.rel_updates {
                total += self.relational_step(u);
            }
            losses.relational = Some(total / self.config.improve.rel_updates as f32);
        }
        self.state.step += 1;
        Ok(losses)
    }

    /// Encodes the labelled images and fits the mixture to their codes. The covariance factor
    /// is `prior.shrink` for the first and the `last` fit, `prior.refresh_shrink` between.
    pub fn fit_mixture(&mut self, last: bool) -> Result<()> {
        let codes = self.encode_labelled();
        let comps: Vec<usize> =
            self.split.labelled.iter().map(|&i| self.data.components[i]).collect();
        let p = &self.config.prior;
        let shrink = if self.mixture().is_some() && !last { p.refresh_shrink } else { p.shrink };
        let mixture = Mixture::fit(
            &codes,
            self.arch.latent,
            &comps,
            self.data.task.components(),
            p.covariance,
            shrink,
            p.epsilon,
        )?;
        self.mixture_tensors = Some(mixture.tensors(&self.device));
        self.state.prior = Prior::Mixture(mixture);
        Ok(())
    }

    /// Codes of the labelled images under the current encoder.
    fn encode_labelled(&self) -> Vec<f32> {
        encode_pixels(
            &self.nets.ae,
            &self.labelled_pixels,
            self.data.image_shape(),
            &self.device.clone().inner(),
        )
    }

    fn image_tensor(&self, pixels: Vec<f32>, n: usize) -> Tensor<4> {
        let [c, h, w] = self.arch.image;
        Tensor::from_data(TensorData::new(pixels, [n, c, h, w]), &self.device)
    }

    /// One autoencoder update and one discriminator update on a batch.
    fn autoencoder_and_discriminator_step(&mut self, losses: &mut StepLosses) {
        let s = self.state.step as u64;
        let seed = self.config.seed;
        let b = self.config.train.batch_size;
        let mut rng = stream(seed, Stream::Batch, s);
        let items: Vec<usize> = (0..b)
            .map(|_| *self.split.train.choose(&mut rng).expect("train split is not empty"))
            .collect();
        let clean = self.data.render_batch(&items);
        let mut noisy = clean.clone();
        let mut aug_rng = stream(seed, Stream::Augment, s);
        self.noise.apply(&mut noisy, &mut aug_rng);

        // One encoder pass over every view the step needs: the batch, then (default mode)
        // augmented labelled images and strongly augmented views of the batch.
        let extra = self.extra_views(&clean, &mut aug_rng);
        let mut inputs = noisy;
        inputs.extend_from_slice(&extra.labelled_pixels);
        inputs.extend_from_slice(&extra.strong_pixels);
        let n_lab = extra.labelled_targets.len();
        let n_strong = extra.strong_pixels.len() / self.data.dataset.image_len();
        let z_all = self.nets.ae.encoder.forward(self.image_tensor(inputs, b + n_lab + n_strong));
        let z = z_all.clone().slice([0..b]);
        let logits = self.nets.ae.decoder.forward(z.clone());
        let recon = bce_with_logits(logits, self.image_tensor(clean, b));
        let adversarial = softplus(self.nets.disc.forward(z.clone()).neg(), 1.0).mean();
        let beta = self.config.train.beta;
        let mut loss = recon.clone() + adversarial.clone().mul_scalar(beta);
        losses.recon = Some(scalar(&recon));
        losses.adversarial = Some(scalar(&adversarial));

        if let Some(mix) = self.mixture_tensors.clone() {
            let imp = &self.config.improve;
            if n_lab > 0 {
                let z_lab = z_all.clone().slice([b..b + n_lab]);
                let sup =
                    posterior_cross_entropy(&mix, z_lab, &extra.labelled_targets, &self.device);
                losses.supervised = Some(scalar(&sup));
                loss = loss + sup.mul_scalar(imp.supervised_weight);
            }
            if n_strong > 0 {
                let z_strong = z_all.slice([b + n_lab..b + n_lab + n_strong]);
                if let Some(cons) =
                    self.consistency_loss(&mix, z.clone().slice([0..n_strong]), z_strong)
                {
                    losses.consistency = Some(scalar(&cons));
                    loss = loss + cons.mul_scalar(imp.consistency_weight);
                }
            }
        }
        let grads = loss.backward();
        let grads = GradientsParams::from_grads(grads, &self.nets.ae);
        self.nets.ae = self.opt_ae.step(self.config.train.lr, self.nets.ae.clone(), grads);

        let prior = self.state.prior.sample(b, &mut stream(seed, Stream::PriorSample, s));
        let prior = Tensor::from_data(TensorData::new(prior, [b, self.arch.latent]), &self.device);
        let real = softplus(self.nets.disc.forward(prior).neg(), 1.0).mean();
        let fake = softplus(self.nets.disc.forward(z.detach()), 1.0).mean();
        let disc_loss = real + fake;
        losses.discriminator = Some(scalar(&disc_loss));
        let grads = GradientsParams::from_grads(disc_loss.backward(), &self.nets.disc);
        self.nets.disc = self.opt_disc.step(self.config.train.lr, self.nets.disc.clone(), grads);
    }

    /// The default mode's extra views, empty in the paper mode or before the switch.
    fn extra_views(&self, clean: &[f32], rng: &mut impl Rng) -> ExtraViews {
        let mut views = ExtraViews::default();
        let imp = &self.config.improve;
        if self.mixture_tensors.is_none() {
            return views;
        }
        let (shape, len) = (self.data.image_shape(), self.data.dataset.image_len());
        let aug = self.labelled_augmentation();
        if imp.supervised_weight > 0.0 {
            let rows: Vec<usize> = (0..imp.labelled_batch)
                .map(|_| rng.random_range(..self.split.labelled.len()))
                .collect();
            for &row in &rows {
                let img = &self.labelled_pixels[row * len..(row + 1) * len];
                let comp = self.data.components[self.split.labelled[row]];
                let mut view = match aug {
                    Some(aug) => {
                        labelled_view(img, shape, aug, &self.data.task.component_classes(comp), rng)
                    }
                    None => img.to_vec(),
                };
                self.noise.apply(&mut view, rng);
                views.labelled_pixels.extend(view);
                views.labelled_targets.push(comp);
            }
        }
        if imp.consistency_weight > 0.0 {
            if let Some(aug) = &self.data.task.augment {
                let strong = (imp.consistency_share * (clean.len() / len) as f64).round() as usize;
                for img in clean.chunks_exact(len).take(strong) {
                    let mut view = strong_view(img, shape, aug, rng);
                    self.noise.apply(&mut view, rng);
                    views.strong_pixels.extend(view);
                }
            }
        }
        views
    }

    /// Cross-entropy of the strong view's posterior against the confident pseudo-labels of
    /// the weak view (FixMatch-style); None when no code in the batch is confident enough.
    fn consistency_loss(
        &self,
        mix: &MixtureTensors,
        z_weak: Tensor<2>,
        z_strong: Tensor<2>,
    ) -> Option<Tensor<1>> {
        let b = z_weak.dims()[0];
        let posterior = log_softmax(mix.log_densities(z_weak.detach()), 1).exp();
        let post = posterior.into_data().try_into_vec::<f32>().expect("f32 posterior");
        let k = mix.components();
        let threshold = self.config.improve.consistency_threshold as f32;
        let mut mask = vec![0.0f32; b * k];
        let mut count = 0;
        for (row, p) in post.chunks_exact(k).enumerate() {
            let (best, &pmax) = p
                .iter()
                .enumerate()
                .fold((0, &p[0]), |a, (i, v)| if *v > *a.1 { (i, v) } else { a });
            if pmax >= threshold {
                mask[row * k + best] = 1.0;
                count += 1;
            }
        }
        if count == 0 {
            return None;
        }
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [b, k]), &self.device);
        let logp = log_softmax(mix.log_densities(z_strong), 1);
        Some((logp * mask).sum().neg().div_scalar(count as f32).reshape([1]))
    }

    /// One ReL update on codes sampled from the prior; returns its loss.
    fn relational_step(&mut self, update: usize) -> f32 {
        let Some(mixture) = self.mixture().cloned() else { return f32::NAN };
        let s = self.state.step as u64;
        let n = self.config.train.rel_batch_size;
        let mut rng = stream(self.config.seed, Stream::Relation, s * 64 + update as u64);
        let mut batch = sample_relation_batch(&self.relations, &mixture, n, &mut rng);
        if self.state.step >= self.config.train.steps {
            let m = (n as f64 * self.config.improve.rel_labelled_fraction).round() as usize;
            self.replace_with_labelled_codes(&mut batch, &mixture, m, &mut rng);
        }
        let input =
            relation_input(&batch.inputs, self.relations.input_width(mixture.dim), &self.device);
        // One row per output code, so several outputs are scored like single ones.
        let out = self.nets.rel.forward(input).reshape([n * self.relations.outputs(), mixture.dim]);
        let targets: Vec<usize> =
            batch.applications.iter().flat_map(|a| a.outputs.iter().copied()).collect();
        let mix = self.mixture_tensors.clone().expect("tensors exist with the mixture");
        let loss = match self.config.train.rel_objective.as_str() {
            "mse" => {
                let target: Vec<f32> =
                    targets.iter().flat_map(|&t| mixture.sample(t, &mut rng)).collect();
                let target = Tensor::<2>::from_data(
                    TensorData::new(target, [targets.len(), mixture.dim]),
                    &self.device,
                );
                (out - target).powi_scalar(2).sum_dim(1).mean()
            }
            _ => {
                let onehot = one_hot(&targets, mixture.components(), &self.device);
                (mix.log_densities(out) * onehot).sum_dim(1).mean().neg()
            }
        };
        let value = scalar(&loss);
        let grads = GradientsParams::from_grads(
            loss.mul_scalar(self.config.train.gamma).backward(),
            &self.nets.rel,
        );
        self.nets.rel = self.opt_rel.step(self.config.train.rel_lr, self.nets.rel.clone(), grads);
        value
    }

    /// Replaces the first `m` rows of `batch` by rows built from encoded labelled images: the
    /// first operand one chosen at random, with a random relation defined at its true
    /// component, and any further operand or operator code another labelled image of its
    /// component, so the ReL learns to take the codes real images have in every input.
    fn replace_with_labelled_codes(
        &mut self,
        batch: &mut RelationBatch,
        mixture: &Mixture,
        m: usize,
        rng: &mut impl Rng,
    ) {
        if m == 0 {
            return;
        }
        let d = self.arch.latent;
        if self.frozen_labelled_codes.is_none() {
            self.frozen_labelled_codes = Some(self.encode_labelled());
        }
        let codes = self.frozen_labelled_codes.as_ref().expect("just computed");
        let labelled = &self.split.labelled;
        let component_of = |j: usize| self.data.components[labelled[j]];
        let mut by_component = vec![Vec::new(); mixture.components()];
        for j in 0..labelled.len() {
            by_component[component_of(j)].push(j);
        }
        let width = self.relations.input_width(d);
        for row in 0..m.min(batch.applications.len()) {
            let j = rng.random_range(0..labelled.len());
            let Some(application) = self.relations.continue_from(component_of(j), rng) else {
                continue;
            };
            let mut draw = |c: usize| match by_component[c].choose(rng) {
                Some(&k) => codes[k * d..(k + 1) * d].to_vec(),
                None => mixture.sample(c, rng),
            };
            let mut input = Vec::with_capacity(width);
            draw_relation_row(
                &self.relations,
                &application,
                Some(&codes[j * d..(j + 1) * d]),
                &mut draw,
                &mut input,
            );
            batch.inputs[row * width..(row + 1) * width].copy_from_slice(&input);
            batch.applications[row] = application;
        }
    }

    /// Writes the checkpoint atomically.
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        let state = serde_json::to_vec(&self.state).expect("train state serialises");
        // `valid()` folds batch norm's pending running-statistics update into its value, which
        // `into_record` alone would miss.
        let sections: Vec<Vec<u8>> = vec![
            state,
            record_bytes(self.nets.ae.valid().into_record().into_bytes(), path)?,
            record_bytes(self.nets.disc.valid().into_record().into_bytes(), path)?,
            record_bytes(self.nets.rel.valid().into_record().into_bytes(), path)?,
            record_bytes(self.opt_ae.into_bytes(), path)?,
            record_bytes(self.opt_disc.into_bytes(), path)?,
            record_bytes(self.opt_rel.into_bytes(), path)?,
        ];
        write_sections(path, &sections)
    }

    /// Restores weights, optimiser states and the train state from a checkpoint.
    pub fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        let sections = read_sections(path, 7)?;
        let bad = |e: &dyn std::fmt::Display| Error::file(path, format!("corrupt checkpoint: {e}"));
        self.state = serde_json::from_slice(&sections[0]).map_err(|e| bad(&e))?;
        let record = |i: usize| {
            ModuleRecord::from_bytes(Bytes::from_bytes_vec(sections[i].clone()))
                .map_err(|e| bad(&e))
        };
        self.nets.ae = self.nets.ae.clone().try_load_record(record(1)?).map_err(|e| bad(&e))?;
        self.nets.disc = self.nets.disc.clone().try_load_record(record(2)?).map_err(|e| bad(&e))?;
        self.nets.rel = self.nets.rel.clone().try_load_record(record(3)?).map_err(|e| bad(&e))?;
        let optim = |o: ModuleOptimizer, i: usize| {
            o.from_bytes(Bytes::from_bytes_vec(sections[i].clone())).map_err(|e| bad(&e))
        };
        self.opt_ae = optim(adam(), 4)?;
        self.opt_disc = optim(adam(), 5)?;
        self.opt_rel = optim(adam(), 6)?;
        self.mixture_tensors = self.mixture().map(|m| m.tensors(&self.device));
        Ok(())
    }
}

/// Training views beyond the plain batch (default mode).
#[derive(Default)]
struct ExtraViews {
    labelled_pixels: Vec<f32>,
    labelled_targets: Vec<usize>,
    strong_pixels: Vec<f32>,
}

const CHECKPOINT_MAGIC: &[u8; 8] = b"RLTCKPT1";

fn record_bytes(
    bytes: std::result::Result<Bytes, burn::store::RecordError>,
    path: &Path,
) -> Result<Vec<u8>> {
    bytes
        .map(|b| b.to_vec())
        .map_err(|e| Error::file(path, format!("cannot serialise checkpoint: {e}")))
}

/// A checkpoint file: the magic, then each section as its length and its bytes; atomic.
fn write_sections(path: &Path, sections: &[Vec<u8>]) -> Result<()> {
    let mut out = CHECKPOINT_MAGIC.to_vec();
    for s in sections {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s);
    }
    crate::data::images::write_atomic(path, &out)
}

/// The sections of a checkpoint written by [`write_sections`], which must number `expected`.
fn read_sections(path: &Path, expected: usize) -> Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
    if bytes.len() < 8 || &bytes[..8] != CHECKPOINT_MAGIC {
        return Err(Error::file(path, "not a relatent checkpoint"));
    }
    let mut sections = Vec::new();
    let mut at = 8;
    while at < bytes.len() {
        let len_bytes: [u8; 8] = bytes
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::file(path, "truncated checkpoint"))?;
        let len = u64::from_le_bytes(len_bytes) as usize;
        let body = bytes
            .get(at + 8..at + 8 + len)
            .ok_or_else(|| Error::file(path, "truncated checkpoint"))?;
        sections.push(body.to_vec());
        at += 8 + len;
    }
    if sections.len() != expected {
        return Err(Error::file(
            path,
            format!("checkpoint has {} sections, expected {expected}", sections.len()),
        ));
    }
    Ok(sections)
}

/// Prior samples for ReL training: one application per row and its input row.
pub struct RelationBatch {
    /// n × [`RelationSet::input_width`] ReL inputs.
    pub inputs: Vec<f32>,
    pub applications: Vec<Application>,
}

/// Picks a relation and valid inputs uniformly at random per row and draws the input codes
/// (and operator codes) from their components.
pub fn sample_relation_batch(
    relations: &RelationSet,
    mixture: &Mixture,
    n: usize,
    rng: &mut impl Rng,
) -> RelationBatch {
    let mut batch = RelationBatch {
        inputs: Vec::with_capacity(n * relations.input_width(mixture.dim)),
        applications: Vec::with_capacity(n),
    };
    for _ in 0..n {
        let application = relations.sample(rng);
        draw_relation_row(
            relations,
            &application,
            None,
            &mut |c| mixture.sample(c, rng),
            &mut batch.inputs,
        );
        batch.applications.push(application);
    }
    batch
}

/// Appends the ReL input row of `application` to `out`: the code of each input (the given
/// `first` code, or one drawn by `draw` from the input's component), then the operator's
/// code drawn likewise, or the relation's one-hot id.
pub fn draw_relation_row(
    relations: &RelationSet,
    application: &Application,
    first: Option<&[f32]>,
    draw: &mut impl FnMut(usize) -> Vec<f32>,
    out: &mut Vec<f32>,
) {
    let mut codes = Vec::new();
    for (i, &c) in application.inputs.iter().enumerate() {
        match (i, first) {
            (0, Some(code)) => codes.extend_from_slice(code),
            _ => codes.extend(draw(c)),
        }
    }
    let operator = relations.relations[application.relation].operator.map(&mut *draw);
    relation_row(relations, application.relation, &codes, operator.as_deref(), out);
}

/// Appends a ReL input row to `out`: the input codes side by side, then the operator's code
/// (for relations selected by their operator) or relation `relation`'s one-hot id.
pub fn relation_row(
    relations: &RelationSet,
    relation: usize,
    input_codes: &[f32],
    operator_code: Option<&[f32]>,
    out: &mut Vec<f32>,
) {
    out.extend_from_slice(input_codes);
    match operator_code {
        Some(code) => out.extend_from_slice(code),
        None => out.extend((0..relations.len()).map(|r| if r == relation { 1.0 } else { 0.0 })),
    }
}

/// ReL input rows as a tensor [n, width].
pub fn relation_input(rows: &[f32], width: usize, device: &Device) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(rows.to_vec(), [rows.len() / width, width]), device)
}

/// One-hot rows [n, k].
pub fn one_hot(ids: &[usize], k: usize, device: &Device) -> Tensor<2> {
    let mut v = vec![0.0f32; ids.len() * k];
    for (row, &id) in ids.iter().enumerate() {
        v[row * k + id] = 1.0;
    }
    Tensor::from_data(TensorData::new(v, [ids.len(), k]), device)
}

/// Binary cross-entropy of logits against targets, summed per image, averaged over the batch:
/// softplus(l) − x·l.
pub fn bce_with_logits(logits: Tensor<4>, targets: Tensor<4>) -> Tensor<1> {
    let b = logits.dims()[0];
    model::kernels::pointwise::bce_with_logits_sum(logits, targets).div_scalar(b as f32)
}

/// Mean cross-entropy of the mixture posterior p(k | z) against `targets`.
fn posterior_cross_entropy(
    mix: &MixtureTensors,
    z: Tensor<2>,
    targets: &[usize],
    device: &Device,
) -> Tensor<1> {
    let k = mix.components();
    let logp = log_softmax(mix.log_densities(z), 1);
    (logp * one_hot(targets, k, device)).sum_dim(1).mean().neg()
}

pub(crate) fn scalar(t: &Tensor<1>) -> f32 {
    t.clone().into_scalar::<f32>()
}

/// Encodes the task's images `items` in inference mode, in batches; codes row-major n×d.
pub fn encode(ae: &AbsAe, data: &TaskData, items: &[usize], device: &Device) -> Vec<f32> {
    let encoder = ae.encoder.valid().to_device(device);
    let mut codes = Vec::new();
    for chunk in items.chunks(ENCODE_CHUNK) {
        codes.extend(encode_chunk(&encoder, data.render_batch(chunk), data.image_shape(), device));
    }
    codes
}

/// Codes of images already in memory (`shape` each, concatenated), in evaluation mode.
pub fn encode_pixels(ae: &AbsAe, pixels: &[f32], shape: ImageShape, device: &Device) -> Vec<f32> {
    let encoder = ae.encoder.valid().to_device(device);
    let len: usize = shape.iter().product();
    pixels
        .chunks(ENCODE_CHUNK * len)
        .flat_map(|chunk| encode_chunk(&encoder, chunk.to_vec(), shape, device))
        .collect()
}

/// Images encoded per forward pass outside training.
const ENCODE_CHUNK: usize = 256;

fn encode_chunk(
    encoder: &Encoder,
    pixels: Vec<f32>,
    [c, h, w]: ImageShape,
    device: &Device,
) -> Vec<f32> {
    let n = pixels.len() / (c * h * w);
    let x = Tensor::<4>::from_data(TensorData::new(pixels, [n, c, h, w]), device);
    encoder.forward(x).into_data().try_into_vec::<f32>().expect("f32 codes")
}

/// Progress reporting from [`train`].
pub trait Progress {
    /// Called after each step with the step number (1-based) and its losses.
    fn step(&mut self, step: usize, total: usize, losses: &StepLosses);
}

/// No progress output (tests, library use).
pub struct Quiet;

impl Progress for Quiet {
    fn step(&mut self, _: usize, _: usize, _: &StepLosses) {}
}

/// How far one call of [`train`] goes.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrainOptions {
    /// Continue from the directory's checkpoint.
    pub resume: bool,
    /// Stop (after checkpointing) once this many steps are done; the run can be resumed.
    pub stop_at: Option<usize>,
}

/// What [`train`] needs of a trainer: the AbsAE's [`Trainer`] and the baselines'
/// [`vae::VaeTrainer`].
pub trait Training {
    fn config(&self) -> &Config;
    /// Steps completed.
    fn steps_done(&self) -> usize;
    fn total_steps(&self) -> usize;
    /// Training seconds so far, over all sessions of a resumed run.
    fn seconds(&self) -> f64;
    fn add_seconds(&mut self, seconds: f64);
    fn step(&mut self) -> Result<StepLosses>;
    fn save_checkpoint(&self, path: &Path) -> Result<()>;
    fn load_checkpoint(&mut self, path: &Path) -> Result<()>;
}

impl Training for Trainer {
    fn config(&self) -> &Config {
        &self.config
    }
    fn steps_done(&self) -> usize {
        self.state.step
    }
    fn total_steps(&self) -> usize {
        Trainer::total_steps(self)
    }
    fn seconds(&self) -> f64 {
        self.state.seconds
    }
    fn add_seconds(&mut self, seconds: f64) {
        self.state.seconds += seconds;
    }
    fn step(&mut self) -> Result<StepLosses> {
        Trainer::step(self)
    }
    fn save_checkpoint(&self, path: &Path) -> Result<()> {
        Trainer::save_checkpoint(self, path)
    }
    fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        Trainer::load_checkpoint(self, path)
    }
}

/// Trains `trainer` in `dir` to the end of its schedule (or `stop_at`), logging to
/// `metrics.jsonl` and checkpointing as it goes; with `resume`, first restores the
/// directory's checkpoint. Returns the trainer at the end.
pub fn train<T: Training>(
    mut trainer: T,
    dir: &RunDir,
    options: TrainOptions,
    progress: &mut dyn Progress,
) -> Result<T> {
    if options.resume {
        trainer.load_checkpoint(&dir.checkpoint())?;
        dir.truncate_metrics_after(trainer.steps_done())?;
    }
    let total = trainer.total_steps();
    let end = options.stop_at.map_or(total, |s| s.min(total));
    let every = trainer.config().train.checkpoint_every;
    let log_every = trainer.config().train.log_every;
    let mut clock = Instant::now();
    while trainer.steps_done() < end {
        let losses = trainer.step()?;
        let step = trainer.steps_done();
        progress.step(step, total, &losses);
        // The schedule's last step is always logged; a pause (--stop-at) logs nothing extra, so
        // a paused and resumed run leaves the same metrics.jsonl as an uninterrupted one.
        if step % log_every == 0 || step == total {
            let mut line = serde_json::to_value(&losses).expect("losses serialise");
            line["step"] = step.into();
            line["phase"] = phase(trainer.config(), step - 1).into();
            line["seconds"] = (trainer.seconds() + clock.elapsed().as_secs_f64()).into();
            dir.append_metrics(&line)?;
        }
        if step % every == 0 || step == end {
            trainer.add_seconds(clock.elapsed().as_secs_f64());
            clock = Instant::now();
            trainer.save_checkpoint(&dir.checkpoint())?;
        }
    }
    Ok(trainer)
}

/// Name of the schedule phase of step `s`.
pub fn phase(config: &Config, s: usize) -> &'static str {
    if config.is_baseline() {
        "vae"
    } else if s < config.train.warmup_steps {
        "warmup"
    } else if s < config.train.steps {
        "mixture"
    } else {
        "rel-finetune"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Task;

    /// A stand-in for drawing codes: every value of the code is the component's index.
    fn code_of(c: usize) -> Vec<f32> {
        vec![c as f32; 2]
    }

    #[test]
    fn consistency_share_decides_how_many_batch_images_get_a_strong_view() {
        for (share, strong) in [(0.0, 0), (0.25, 2), (0.5, 4), (1.0, 8)] {
            let mut config = Config::preset("default", "dsprites").unwrap();
            (config.tau, config.improve.labelled_batch, config.improve.consistency_share) =
                (2, 3, share);
            let mut trainer = Trainer::new(config).unwrap();
            trainer.fit_mixture(false).unwrap();
            let clean = trainer.data.render_batch(&trainer.split.train[..8]);
            let views = trainer.extra_views(&clean, &mut stream(0, Stream::Augment, 0));
            let len = trainer.data.dataset.image_len();
            assert_eq!(
                (views.labelled_targets.len(), views.labelled_pixels.len()),
                (3, 3 * len),
                "share {share}"
            );
            assert_eq!(views.strong_pixels.len(), strong * len, "share {share}");
        }
    }

    #[test]
    fn binary_rows_hold_both_operands_and_the_operator_code() {
        let set = RelationSet::for_task(&Task::by_name("hwf").unwrap(), &[]).unwrap();
        let sub = set.application(set.position("sub").unwrap(), vec![3, 4]);
        let mut row = Vec::new();
        draw_relation_row(&set, &sub, Some(&[0.5, 0.5]), &mut code_of, &mut row);
        assert_eq!(
            row,
            [0.5, 0.5, 4.0, 4.0, 11.0, 11.0],
            "chain code, operand 4, the `-` component's code"
        );
        assert_eq!(row.len(), set.input_width(2));
        row.clear();
        draw_relation_row(&set, &sub, None, &mut code_of, &mut row);
        assert_eq!(row, [3.0, 3.0, 4.0, 4.0, 11.0, 11.0]);
    }

    #[test]
    fn unary_rows_end_in_the_relation_one_hot() {
        let set = RelationSet::for_task(&Task::by_name("dsprites").unwrap(), &[]).unwrap();
        let right = set.position("move_right").unwrap();
        let mut row = Vec::new();
        draw_relation_row(&set, &set.application(right, vec![7]), None, &mut code_of, &mut row);
        let mut want = vec![7.0, 7.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        want[2 + right] = 1.0;
        assert_eq!(row, want);
    }
}
