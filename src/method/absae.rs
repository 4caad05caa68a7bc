//! The AbsAE (SPEC §2, §5): an adversarial autoencoder whose codes a discriminator compares
//! with the prior — uniform during warm-up, then the mixture fitted to the labelled images'
//! codes — and the relational learner trained on codes drawn from that mixture.
//!
//! One step on a batch: (1) the autoencoder update on reconstruction + β·adversarial (plus the
//! default mode's supervised and consistency terms), (2) the discriminator update on prior
//! samples against the detached codes, (3) after warm-up, the ReL updates. Once the
//! autoencoder's steps are done, ReL-only steps follow.

use std::cell::OnceCell;
use std::sync::Arc;

use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use rand::Rng;
use rand::seq::IndexedRandom;

use super::Method;
use crate::Result;
use crate::backend::adam::{adam, descend};
use crate::config::CycleObjective;
use crate::context::{RunContext, code_tensor, image_tensor};
use crate::data::augment::{
    Augmentation, PixelNoise, carried_nuisances, counterfactual, labelled_view, makes_views_of,
    strong_view,
};
use crate::data::room_colours::{Room, in_room};
use crate::inference::encode_with;
use crate::model::{self, AbsAe, Encoder, Mlp};
use crate::objectives::{self, scalar};
use crate::prior::{ComponentWeights, Mixture, MixtureTensors, Prior, max_posterior};
use crate::rel::RelationSet;
use crate::rel::learner::{self, RealCodes, RelationBatch, relation_input, sample_relation_batch};
use crate::rng::{Stream, stream};
use crate::train::StepLosses;
use crate::train::checkpoint::{Checkpoint, sections};

/// The AbsAE in training: its three networks, their optimisers and the prior in force.
pub struct AbsAeMethod {
    ctx: Arc<RunContext>,
    relations: RelationSet,
    /// The autodiff device the networks train on.
    device: Device,
    ae: AbsAe,
    disc: Mlp,
    rel: Mlp,
    opt_ae: ModuleOptimizer,
    opt_disc: ModuleOptimizer,
    opt_rel: ModuleOptimizer,
    prior: Prior,
    mixture_tensors: Option<MixtureTensors>,
    noise: PixelNoise,
    /// Codes of real images the ReL-only batches draw from, once the autoencoder has stopped
    /// (it no longer changes, so a resumed run recomputes the same codes).
    frozen_real_codes: Option<RealCodes>,
    /// The autoencoder once it has stopped, frozen, for the ReL's image cycle.
    frozen_ae: Option<AbsAe>,
    /// The encoder once it has stopped, frozen, for the decoder-only steps.
    frozen_encoder: Option<Encoder>,
    /// Pixels of the labelled images, in `split.labelled` order: every step of the default
    /// mode and every mixture refresh needs them, and rendering them again cost Shapes3D a
    /// tenth of its step time.
    labelled_pixels: Vec<f32>,
}

/// Unlabelled images encoded at a time for the ReL's pseudo-labelled codes (rendering them
/// all at once would hold every pixel in memory).
const PSEUDO_LABEL_CHUNK: usize = 1024;

/// The `Augment` stream's step the ReL's real views are drawn at: past any training step, so
/// they replay no batch's augmentation.
const REAL_VIEWS_STEP: u64 = 1 << 31;

/// Training views beyond the plain batch (default mode).
#[derive(Default)]
struct ExtraViews {
    labelled_pixels: Vec<f32>,
    labelled_targets: Vec<usize>,
    strong_pixels: Vec<f32>,
}

impl AbsAeMethod {
    /// The AbsAE at step 0, its networks initialised from the config's seed.
    pub fn new(ctx: Arc<RunContext>) -> Result<AbsAeMethod> {
        let config = &ctx.config;
        let relations = RelationSet::for_task(&ctx.data.task, &config.relations)?;
        let arch = &ctx.arch;
        let device = ctx.device.clone().autodiff();
        let (ae, disc, rel) = model::seeded_init(&device, config.seed, || {
            let ae = AbsAe::new(arch, &device);
            let disc = model::discriminator(arch, &device);
            let rel = model::relational_learner(
                arch,
                relations.input_width(arch.latent),
                relations.outputs(),
                &device,
            );
            (ae, disc, rel)
        });
        let t = &config.train;
        let noise = PixelNoise::from_config(t.augment, t.noise_std, t.dropout);
        let labelled_pixels = ctx.data.render_batch(&ctx.split.labelled);
        Ok(AbsAeMethod {
            prior: Prior::Uniform { dim: arch.latent },
            relations,
            device,
            ae,
            disc,
            rel,
            opt_ae: adam(),
            opt_disc: adam(),
            opt_rel: adam(),
            mixture_tensors: None,
            noise,
            frozen_real_codes: None,
            frozen_ae: None,
            frozen_encoder: None,
            labelled_pixels,
            ctx,
        })
    }

    /// The mixture, once the prior has switched.
    pub fn mixture(&self) -> Option<&Mixture> {
        match &self.prior {
            Prior::Mixture(m) => Some(m),
            Prior::Uniform { .. } => None,
        }
    }

    /// How many of the labelled images the task's augmentation makes views of, and of how
    /// many; None when labelled images are not augmented (the paper mode, or no augmentation).
    /// Shapes3D's repaint has to find the room's palette hues, so on an official file whose
    /// colours it does not recognise this is how a user learns that the views do nothing.
    pub fn labelled_view_coverage(&self) -> Option<(usize, usize)> {
        use rayon::prelude::*;
        let aug =
            self.labelled_augmentation().filter(|_| self.ctx.config.supervised.weight > 0.0)?;
        let shape = self.ctx.image_shape();
        let len = self.ctx.data.image_len();
        let viewable = self
            .labelled_pixels
            .par_chunks_exact(len)
            .filter(|image| makes_views_of(image, shape, aug))
            .count();
        Some((viewable, self.ctx.split.labelled.len()))
    }

    /// The task's augmentation when the config applies it to the labelled images.
    fn labelled_augmentation(&self) -> Option<&Augmentation> {
        self.ctx.data.task.augment.as_ref().filter(|_| self.ctx.config.supervised.augment)
    }

    /// Encodes the labelled images and fits the mixture to their codes. The covariance factor
    /// is `prior.shrink` for the first and the `last` fit, `prior.refresh_shrink` between.
    pub fn fit_mixture(&mut self, last: bool) -> Result<()> {
        let codes = self.encode_labelled();
        let p = &self.ctx.config.prior;
        let shrink = if self.mixture().is_some() && !last { p.refresh_shrink } else { p.shrink };
        let (dim, k) = (self.ctx.arch.latent, self.ctx.data.task.components());
        let mixture = Mixture::fit(
            &codes,
            dim,
            &self.ctx.labelled_components(),
            k,
            p.covariance,
            shrink,
            p.epsilon,
        )?;
        let mixture = match p.weights {
            ComponentWeights::Equal => mixture,
            ComponentWeights::Grid => mixture.weighted(&self.ctx.data.task.grid_component_shares()),
        };
        self.mixture_tensors = Some(mixture.tensors(&self.device));
        self.prior = Prior::Mixture(mixture);
        Ok(())
    }

    /// Codes of the labelled images under the current encoder.
    fn encode_labelled(&self) -> Vec<f32> {
        encode_with(
            &self.ae.encoder,
            &self.labelled_pixels,
            self.ctx.image_shape(),
            &self.ctx.device,
        )
    }

    fn images(&self, pixels: Vec<f32>) -> Tensor<4> {
        image_tensor(pixels, self.ctx.image_shape(), &self.device)
    }

    /// The training images of step `s`'s batch, drawn from the `Batch` stream.
    fn batch_items(&self, s: u64) -> Vec<usize> {
        let mut rng = stream(self.ctx.config.seed, Stream::Batch, s);
        let train = &self.ctx.split.train;
        (0..self.ctx.config.train.batch_size)
            .map(|_| *train.choose(&mut rng).expect("train split is not empty"))
            .collect()
    }

    /// One autoencoder update and one discriminator update on a batch.
    fn autoencoder_and_discriminator_step(&mut self, step: usize, losses: &mut StepLosses) {
        let config = &self.ctx.config;
        let s = step as u64;
        let seed = config.seed;
        let b = config.train.batch_size;
        let lr = config.train.lr_at(step);
        let clean = self.ctx.data.render_batch(&self.batch_items(s));
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
        let n_strong = extra.strong_pixels.len() / self.ctx.data.image_len();
        let z_all = self.ae.encoder.forward(self.images(inputs));
        let d = self.ctx.arch.latent;
        let z = z_all.clone().slice([0..b, 0..d]);
        let logits = self.ae.decoder.forward(z.clone());
        let recon = objectives::reconstruction_bce(logits.clone(), self.images(clean));
        let adversarial = objectives::encoder_adversarial(self.disc.forward(z.clone()));
        let mut loss = recon.clone() + adversarial.clone().mul_scalar(config.train.beta);
        losses.recon = Some(scalar(&recon));
        losses.adversarial = Some(scalar(&adversarial));

        if let Some(mix) = &self.mixture_tensors {
            if n_lab > 0 {
                let z_lab = z_all.clone().slice([b..b + n_lab, 0..d]);
                let sup = objectives::posterior_cross_entropy(mix, z_lab, &extra.labelled_targets);
                losses.supervised = Some(scalar(&sup));
                loss = loss + sup.mul_scalar(config.supervised.weight);
            }
            if n_strong > 0 {
                let z_strong = z_all.slice([b + n_lab..b + n_lab + n_strong, 0..d]);
                let threshold = config.consistency.threshold as f32;
                if let Some(cons) = objectives::consistency(
                    mix,
                    z.clone().slice([0..n_strong, 0..d]),
                    z_strong,
                    threshold,
                ) {
                    losses.consistency = Some(scalar(&cons));
                    loss = loss + cons.mul_scalar(config.consistency.weight);
                }
            }
        }
        let loss = loss + self.cycle_terms(&self.ae.encoder, s, z.clone(), logits, losses);
        descend(&mut self.opt_ae, lr, &mut self.ae, loss);

        let prior = self.prior.sample(b, &mut stream(seed, Stream::PriorSample, s));
        let on_prior = self.disc.forward(code_tensor(prior, self.ctx.arch.latent, &self.device));
        let on_codes = self.disc.forward(z.detach());
        let disc_loss = objectives::discriminator(on_prior, on_codes);
        losses.discriminator = Some(scalar(&disc_loss));
        descend(&mut self.opt_disc, lr, &mut self.disc, disc_loss);
    }

    /// The cycle terms of step `s` at their weights (zero while they are off or before the
    /// switch), read by `encoder`: the batch's reconstructions (`logits` of codes `z`) and
    /// codes drawn from the mixture, decoded and encoded again.
    fn cycle_terms(
        &self,
        encoder: &Encoder,
        s: u64,
        z: Tensor<2>,
        logits: Tensor<4>,
        losses: &mut StepLosses,
    ) -> Tensor<1> {
        let cycle = &self.ctx.config.cycle;
        let mut total = Tensor::zeros([1], &self.device);
        if let Some(term) = self.reconstruction_cycle(encoder, z, logits) {
            losses.reconstruction_cycle = Some(scalar(&term));
            total = total + term.mul_scalar(cycle.reconstruction);
        }
        if let Some(term) = self.latent_cycle(encoder, s) {
            losses.cycle = Some(scalar(&term));
            total = total + term.mul_scalar(cycle.weight);
        }
        total
    }

    /// The latent cycle term of step `s` (None while it is off or before the switch): codes
    /// drawn from the mixture, decoded to images and encoded again, against where they started.
    fn latent_cycle(&self, encoder: &Encoder, s: u64) -> Option<Tensor<1>> {
        let cycle = &self.ctx.config.cycle;
        let (mixture, mix) = (self.mixture()?, self.mixture_tensors.as_ref()?);
        if cycle.weight == 0.0 {
            return None;
        }
        let mut rng = stream(self.ctx.config.seed, Stream::Cycle, s);
        let components: Vec<usize> =
            (0..cycle.batch).map(|_| rng.random_range(..mixture.components())).collect();
        let codes: Vec<f32> =
            components.iter().flat_map(|&k| mixture.sample(k, &mut rng)).collect();
        let start = code_tensor(codes, mixture.dim, &self.device);
        let images = burn::tensor::activation::sigmoid(self.ae.decoder.forward(start.clone()));
        let back = encoder.forward(images);
        Some(match cycle.objective {
            CycleObjective::Start => objectives::latent_cycle(mix, back, start, &components),
            CycleObjective::Component => {
                objectives::posterior_cross_entropy(mix, back, &components)
            }
        })
    }

    /// The reconstruction cycle (None while it is off, before the switch, or when no code of
    /// the batch is confident): the batch's reconstructions (`logits`) encoded again, against
    /// the components their codes `z` are confidently in.
    fn reconstruction_cycle(
        &self,
        encoder: &Encoder,
        z: Tensor<2>,
        logits: Tensor<4>,
    ) -> Option<Tensor<1>> {
        let config = &self.ctx.config;
        let mix = self.mixture_tensors.as_ref()?;
        if config.cycle.reconstruction == 0.0 {
            return None;
        }
        let back = encoder.forward(burn::tensor::activation::sigmoid(logits));
        objectives::consistency(mix, z, back, config.consistency.threshold as f32)
    }

    /// The step the decoder-only steps start at: after the autoencoder's and the ReL-only steps.
    fn first_decoder_step(&self) -> usize {
        self.ctx.config.train.steps + self.ctx.config.rel.finetune_steps
    }

    /// One decoder-only update (`cycle.decoder_steps`): the stopped encoder, frozen as
    /// inference runs it, encodes a clean batch; the decoder, run as inference runs it,
    /// reconstructs it and draws the cycle terms' codes so that this encoder reads them as
    /// their components.
    fn decoder_step(&mut self, step: usize, losses: &mut StepLosses) {
        let config = &self.ctx.config;
        let s = step as u64;
        let clean = self.images(self.ctx.data.render_batch(&self.batch_items(s)));
        let encoder =
            self.frozen_encoder.get_or_insert_with(|| self.ae.encoder.clone().freeze()).clone();
        // The decoder's batch norm on its running statistics too, as inference runs it: the
        // autoencoder steps normalised real codes and prior samples each by their own batch's
        // statistics, and the running blend of both drew some components as another shape.
        self.ae.decoder = self.ae.decoder.clone().freeze().set_require_grad(true);
        let z = encoder.forward(clean.clone()).detach();
        let logits = self.ae.decoder.forward(z.clone());
        let recon = objectives::reconstruction_bce(logits.clone(), clean);
        losses.recon = Some(scalar(&recon));
        let loss = recon + self.cycle_terms(&encoder, s, z, logits, losses);
        // Only the decoder's parameters are in the graph: the encoder is frozen.
        descend(&mut self.opt_ae, config.train.lr, &mut self.ae, loss);
    }

    /// The default mode's extra views, empty in the paper mode or before the switch.
    fn extra_views(&self, clean: &[f32], rng: &mut impl Rng) -> ExtraViews {
        let mut views = ExtraViews::default();
        if self.mixture_tensors.is_none() {
            return views;
        }
        let (config, data) = (&self.ctx.config, &self.ctx.data);
        let (shape, len) = (self.ctx.image_shape(), data.image_len());
        let labelled = &self.ctx.split.labelled;
        if config.supervised.weight > 0.0 {
            let aug = self.labelled_augmentation();
            let rows: Vec<usize> = (0..config.supervised.labelled_batch)
                .map(|_| rng.random_range(..labelled.len()))
                .collect();
            for &row in &rows {
                let img = &self.labelled_pixels[row * len..(row + 1) * len];
                let comp = data.components[labelled[row]];
                let factor_classes = config
                    .supervised
                    .position_anchor
                    .then(|| data.dataset.factor_classes(data.indices[labelled[row]]));
                let mut view = match aug {
                    Some(aug) => labelled_view(
                        img,
                        shape,
                        aug,
                        &data.task.component_classes(comp),
                        factor_classes.as_deref(),
                        rng,
                    ),
                    None => img.to_vec(),
                };
                self.noise.apply(&mut view, rng);
                views.labelled_pixels.extend(view);
                views.labelled_targets.push(comp);
            }
        }
        if config.consistency.weight > 0.0
            && let Some(aug) = &data.task.augment
        {
            let strong = (config.consistency.share * (clean.len() / len) as f64).round() as usize;
            for img in clean.chunks_exact(len).take(strong) {
                let mut view = strong_view(img, shape, aug, rng);
                self.noise.apply(&mut view, rng);
                views.strong_pixels.extend(view);
            }
        }
        views
    }

    /// One ReL update on codes sampled from the prior (and in the ReL-only steps, partly on
    /// the labelled images' codes); returns its loss.
    fn relational_step(&mut self, step: usize, update: usize) -> f32 {
        let Some(mixture) = self.mixture().cloned() else { return f32::NAN };
        let ctx = Arc::clone(&self.ctx);
        let config = &ctx.config;
        let n = config.rel.batch_size;
        let mut rng = stream(config.seed, Stream::Relation, step as u64 * 64 + update as u64);
        let mut batch = sample_relation_batch(&self.relations, &mixture, n, &mut rng);
        if step >= config.train.steps {
            let m = (n as f64 * config.rel.labelled_fraction).round() as usize;
            self.replace_with_real_codes(&mut batch, &mixture, m, &mut rng);
        }
        let input =
            relation_input(&batch.inputs, self.relations.input_width(mixture.dim), &self.device);
        // One row per output code, so several outputs are scored like single ones.
        let out =
            learner::forward(&self.rel, input, &self.relations, mixture.dim, config.rel.residual)
                .reshape([n * self.relations.outputs(), mixture.dim]);
        let image_cycle = (step >= config.train.steps && update == 0)
            .then(|| self.image_cycle(out.clone(), &batch.targets()))
            .flatten();
        let mix = self.mixture_tensors.as_ref().expect("tensors exist with the mixture");
        let counterfactual = (config.rel.counterfactual > 0.0)
            .then(|| learner::counterfactual_loss(out.clone(), &batch))
            .flatten();
        let mut loss = learner::objective(
            config.rel.objective,
            out,
            &batch,
            &mixture,
            mix,
            config.rel.counterfactual_centring,
            &mut rng,
        );
        let value = scalar(&loss);
        if let Some(term) = counterfactual {
            loss = loss + term.mul_scalar(config.rel.counterfactual);
        }
        if let Some(cycle) = image_cycle {
            loss = loss + cycle.mul_scalar(config.rel.image_cycle);
        }
        descend(
            &mut self.opt_rel,
            config.rel.lr,
            &mut self.rel,
            loss.mul_scalar(config.train.gamma),
        );
        value
    }

    /// The image cycle of the ReL's first `rel.image_cycle_batch` output codes `out` (None
    /// while it is off): decoded and encoded again by the frozen autoencoder, the posterior's
    /// cross-entropy against their `targets`. Those rows are the real images' codes where the
    /// ReL-only batches have any, whose first step is where a relation fails most.
    fn image_cycle(&mut self, out: Tensor<2>, targets: &[usize]) -> Option<Tensor<1>> {
        let rel = &self.ctx.config.rel;
        if rel.image_cycle == 0.0 {
            return None;
        }
        // Frozen: no gradient of its own, batch norm on its running statistics, yet the
        // gradient reaches the ReL's output through it.
        let ae = self.frozen_ae.get_or_insert_with(|| self.ae.clone().freeze());
        let k = rel.image_cycle_batch.min(targets.len());
        let codes = out.slice([0..k, 0..self.ctx.arch.latent]);
        let images = burn::tensor::activation::sigmoid(ae.decoder.forward(codes));
        let back = ae.encoder.forward(images);
        let mix = self.mixture_tensors.as_ref().expect("tensors exist with the mixture");
        Some(objectives::posterior_cross_entropy(mix, back, &targets[..k]))
    }

    /// Replaces the first `m` rows of `batch` by rows built from real images' codes, which
    /// are frozen once the autoencoder has stopped.
    fn replace_with_real_codes(
        &mut self,
        batch: &mut RelationBatch,
        mixture: &Mixture,
        m: usize,
        rng: &mut impl Rng,
    ) {
        if m == 0 {
            return;
        }
        if self.frozen_real_codes.is_none() {
            self.frozen_real_codes = Some(self.real_codes(mixture));
        }
        let real = self.frozen_real_codes.as_ref().expect("just computed");
        learner::replace_with_real_codes(batch, &self.relations, real, mixture, m, rng);
    }

    /// The labelled images' codes with their components, then the codes of the first
    /// `rel.pseudo_labelled` unlabelled training images the mixture places confidently, with
    /// the component it places them in; with `rel.counterfactual`, the codes of their
    /// counterfactuals too.
    fn real_codes(&self, mixture: &Mixture) -> RealCodes {
        let labelled_components = self.ctx.labelled_components();
        let mut views = stream(self.ctx.config.seed, Stream::Augment, REAL_VIEWS_STEP);
        let mut real = RealCodes {
            codes: self.encode_labelled(),
            counterfactuals: self.counterfactual_codes(&self.labelled_pixels, &labelled_components),
            components: labelled_components.clone(),
        };
        self.add_real_views(&mut real, &self.labelled_pixels, &labelled_components, &mut views);
        let config = &self.ctx.config;
        let labelled: std::collections::HashSet<usize> =
            self.ctx.split.labelled.iter().copied().collect();
        let unlabelled: Vec<usize> = self
            .ctx
            .split
            .train
            .iter()
            .copied()
            .filter(|i| !labelled.contains(i))
            .take(config.rel.pseudo_labelled)
            .collect();
        let (d, len) = (mixture.dim, self.ctx.data.image_len());
        for chunk in unlabelled.chunks(PSEUDO_LABEL_CHUNK) {
            let pixels = self.ctx.data.render_batch(chunk);
            let codes =
                encode_with(&self.ae.encoder, &pixels, self.ctx.image_shape(), &self.ctx.device);
            let (mut kept_pixels, mut kept_components) = (Vec::new(), Vec::new());
            for (z, image) in codes.chunks_exact(d).zip(pixels.chunks_exact(len)) {
                let (k, ld) = mixture.classify(z);
                if max_posterior(&ld, 1.0) >= config.consistency.threshold {
                    real.codes.extend_from_slice(z);
                    kept_pixels.extend_from_slice(image);
                    kept_components.push(k);
                }
            }
            real.counterfactuals.extend(self.counterfactual_codes(&kept_pixels, &kept_components));
            real.components.extend_from_slice(&kept_components);
            self.add_real_views(&mut real, &kept_pixels, &kept_components, &mut views);
        }
        real
    }

    /// Appends `rel.real_views` augmented views of each image of `pixels` (of `components`)
    /// to `real`: their codes, their counterfactuals' codes, and the image's component.
    fn add_real_views(
        &self,
        real: &mut RealCodes,
        pixels: &[f32],
        components: &[usize],
        rng: &mut impl Rng,
    ) {
        let views = self.ctx.config.rel.real_views;
        let Some(aug) = self.ctx.data.task.augment.as_ref().filter(|_| views > 0) else { return };
        let (shape, len) = (self.ctx.image_shape(), self.ctx.data.image_len());
        let mut view_pixels = Vec::with_capacity(views * pixels.len());
        for _ in 0..views {
            for image in pixels.chunks_exact(len) {
                view_pixels.extend(strong_view(image, shape, aug, rng));
            }
        }
        let view_components = components.repeat(views);
        real.codes.extend(encode_with(&self.ae.encoder, &view_pixels, shape, &self.ctx.device));
        real.counterfactuals.extend(self.counterfactual_codes(&view_pixels, &view_components));
        real.components.extend(view_components);
    }

    /// For each image of `pixels` (of `components`) and each relation, the code of the image
    /// the relation should draw from it, where the task's augmentation can draw it (a sprite
    /// moved to other position bands, an object repainted: [`counterfactual`]; else a labelled
    /// image of the target component given the image's nuisances:
    /// [`Self::donated_counterfactual`]); empty while `rel.counterfactual` is off or the task has
    /// no augmentation.
    fn counterfactual_codes(&self, pixels: &[f32], components: &[usize]) -> Vec<Option<Vec<f32>>> {
        let task = &self.ctx.data.task;
        let (Some(aug), true) = (&task.augment, self.ctx.config.rel.counterfactual > 0.0) else {
            return Vec::new();
        };
        let (shape, len, d) =
            (self.ctx.image_shape(), self.ctx.data.image_len(), self.ctx.arch.latent);
        let relations = &self.relations.relations;
        let donors = self.labelled_rows_by_component();
        let donor_rooms = vec![OnceCell::new(); self.labelled_pixels.len() / len];
        let (mut moved, mut slots) = (Vec::new(), Vec::new());
        for (j, (image, &c)) in pixels.chunks_exact(len).zip(components).enumerate() {
            let room = OnceCell::new();
            for (r, relation) in relations.iter().enumerate() {
                let Some(&[to]) = (relation.arity == 1).then(|| relation.apply(&[c])).flatten()
                else {
                    continue;
                };
                let classes = (task.component_classes(c), task.component_classes(to));
                let view =
                    counterfactual(image, shape, aug, &classes.0, &classes.1).or_else(|| {
                        let room = (*room.get_or_init(|| carried_nuisances(image, shape, aug)))?;
                        self.donated_counterfactual(room, &donors[to], &donor_rooms, j + r, aug)
                    });
                if let Some(view) = view {
                    moved.extend(view);
                    slots.push(j * relations.len() + r);
                }
            }
        }
        let mut out = vec![None; components.len() * relations.len()];
        let codes = encode_with(&self.ae.encoder, &moved, shape, &self.ctx.device);
        for (slot, code) in slots.into_iter().zip(codes.chunks_exact(d)) {
            out[slot] = Some(code.to_vec());
        }
        out
    }

    /// For each component, the rows of `labelled_pixels` that show it, in order.
    fn labelled_rows_by_component(&self) -> Vec<Vec<usize>> {
        let mut rows = vec![Vec::new(); self.ctx.data.task.components()];
        for (row, c) in self.ctx.labelled_components().into_iter().enumerate() {
            rows[c].push(row);
        }
        rows
    }

    /// The first of the labelled images `donors` (rows of one component), from the `start`-th
    /// on (cycling), whose floor and walls can be repainted in the hues of `room`, so repainted
    /// (its orientation stays the donor's): the counterfactual of an image in `room`. None when
    /// none can. `donor_rooms` holds each labelled image's room once found.
    fn donated_counterfactual(
        &self,
        room: Room,
        donors: &[usize],
        donor_rooms: &[OnceCell<Option<Room>>],
        start: usize,
        aug: &Augmentation,
    ) -> Option<Vec<f32>> {
        let (shape, len) = (self.ctx.image_shape(), self.ctx.data.image_len());
        (0..donors.len()).find_map(|k| {
            let row = donors[(start + k) % donors.len()];
            let donor = &self.labelled_pixels[row * len..(row + 1) * len];
            let donor_room =
                (*donor_rooms[row].get_or_init(|| carried_nuisances(donor, shape, aug)))?;
            in_room(donor, donor_room, room, shape[2])
        })
    }
}

impl Method for AbsAeMethod {
    fn step(&mut self, s: usize) -> Result<StepLosses> {
        let config = &self.ctx.config;
        let (warmup, steps) = (config.train.warmup_steps, config.train.steps);
        let switched = s >= warmup;
        let refresh = config.prior.refresh_every;
        let due_refresh =
            refresh > 0 && s > warmup && (s - warmup).is_multiple_of(refresh) && s < steps;
        // A refreshed mixture gets one last fit with the paper's shrink when the autoencoder
        // stops, so the final components are as tight as the paper's.
        let final_fit = refresh > 0 && s == steps;
        if (switched && self.mixture().is_none()) || due_refresh {
            self.fit_mixture(false)?;
        } else if final_fit {
            self.fit_mixture(true)?;
        }
        let mut losses = StepLosses::default();
        if s >= self.first_decoder_step() {
            self.decoder_step(s, &mut losses);
            return Ok(losses);
        }
        if s < steps {
            self.autoencoder_and_discriminator_step(s, &mut losses);
        }
        let rel = &self.ctx.config.rel;
        if switched && (s >= steps || rel.during_autoencoder) {
            let updates = rel.updates_per_step;
            let total: f32 = (0..updates).map(|u| self.relational_step(s, u)).sum();
            losses.relational = Some(total / updates as f32);
        }
        Ok(losses)
    }

    fn phase(&self, s: usize) -> &'static str {
        let train = &self.ctx.config.train;
        if s < train.warmup_steps {
            "warmup"
        } else if s < train.steps {
            "mixture"
        } else if s < self.first_decoder_step() {
            "rel-finetune"
        } else {
            "decoder"
        }
    }

    fn save(&self, checkpoint: &mut Checkpoint) -> Result<()> {
        checkpoint.add_json(sections::PRIOR, &self.prior);
        checkpoint.add_module(sections::AUTOENCODER, self.ae.valid())?;
        checkpoint.add_module(sections::DISCRIMINATOR, self.disc.valid())?;
        checkpoint.add_module(sections::RELATIONAL_LEARNER, self.rel.valid())?;
        checkpoint.add_optimizer(&sections::optimizer(sections::AUTOENCODER), &self.opt_ae)?;
        checkpoint.add_optimizer(&sections::optimizer(sections::DISCRIMINATOR), &self.opt_disc)?;
        checkpoint.add_optimizer(&sections::optimizer(sections::RELATIONAL_LEARNER), &self.opt_rel)
    }

    fn restore(&mut self, checkpoint: &Checkpoint) -> Result<()> {
        self.prior = checkpoint.json(sections::PRIOR)?;
        self.ae = checkpoint.load_module(sections::AUTOENCODER, self.ae.clone())?;
        self.disc = checkpoint.load_module(sections::DISCRIMINATOR, self.disc.clone())?;
        self.rel = checkpoint.load_module(sections::RELATIONAL_LEARNER, self.rel.clone())?;
        self.opt_ae =
            checkpoint.load_optimizer(&sections::optimizer(sections::AUTOENCODER), adam())?;
        self.opt_disc =
            checkpoint.load_optimizer(&sections::optimizer(sections::DISCRIMINATOR), adam())?;
        self.opt_rel = checkpoint
            .load_optimizer(&sections::optimizer(sections::RELATIONAL_LEARNER), adam())?;
        self.mixture_tensors = self.mixture().map(|m| m.tensors(&self.device));
        Ok(())
    }

    fn weights_finite(&self) -> bool {
        model::all_finite(&self.ae) && model::all_finite(&self.disc) && model::all_finite(&self.rel)
    }

    fn notes(&self) -> Vec<String> {
        match self.labelled_view_coverage() {
            Some((viewable, total)) if viewable < total => vec![format!(
                "the augmentation makes views of {viewable} of {total} labelled images; the other {} are used as they are",
                total - viewable
            )],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Preset};

    #[test]
    fn pseudo_labelled_codes_join_the_labelled_ones_with_the_mixtures_component() {
        let mut config = Config::preset(Preset::Default, "dsprites").unwrap();
        (config.tau, config.rel.pseudo_labelled, config.consistency.threshold) = (2, 30, 0.0);
        let ctx = Arc::new(RunContext::new(config).unwrap());
        let mut method = AbsAeMethod::new(ctx.clone()).unwrap();
        method.fit_mixture(false).unwrap();
        let mixture = method.mixture().unwrap().clone();
        let real = method.real_codes(&mixture);
        let (d, labelled) = (mixture.dim, ctx.split.labelled.len());
        assert_eq!(real.codes.len(), real.components.len() * d);
        assert_eq!(real.codes[..labelled * d], method.encode_labelled());
        assert_eq!(real.components[..labelled], ctx.labelled_components());
        assert_eq!(real.components.len() - labelled, 30, "every image passes a threshold of 0");
        for (z, &k) in real.codes[labelled * d..].chunks_exact(d).zip(&real.components[labelled..])
        {
            assert_eq!(mixture.classify(z).0, k, "the component the mixture places it in");
        }
    }

    /// With `rel.real_views`, each real image's views follow the images of its batch (the
    /// labelled ones, then each chunk of pseudo-labelled ones) with the image's component and
    /// their own counterfactuals; the images' own codes are those without views.
    #[test]
    fn real_views_follow_their_images_with_the_images_components() {
        let real_codes = |views: usize| {
            let mut config = Config::preset(Preset::Default, "dsprites").unwrap();
            (config.tau, config.rel.pseudo_labelled, config.consistency.threshold) = (2, 10, 0.0);
            config.rel.real_views = views;
            let ctx = Arc::new(RunContext::new(config).unwrap());
            let mut method = AbsAeMethod::new(ctx.clone()).unwrap();
            method.fit_mixture(false).unwrap();
            let mixture = method.mixture().unwrap().clone();
            (method.real_codes(&mixture), method.relations.len(), ctx.split.labelled.len())
        };
        let (plain, relations, labelled) = real_codes(0);
        let (viewed, _, _) = real_codes(2);
        let d = plain.codes.len() / plain.components.len();
        let blocks = [(0, labelled), (labelled, plain.components.len())];
        let mut at = 0;
        for (from, to) in blocks {
            let n = to - from;
            assert_eq!(viewed.codes[at * d..(at + n) * d], plain.codes[from * d..to * d]);
            let own = &plain.components[from..to];
            assert_eq!(viewed.components[at..at + 3 * n], own.repeat(3));
            // A small sprite turned a little can resample to itself; most views move.
            let views = &viewed.codes[(at + n) * d..(at + 3 * n) * d];
            let moved = (views.chunks_exact(d).enumerate())
                .filter(|(k, view)| *view != &plain.codes[(from + k % n) * d..][..d])
                .count();
            assert!(4 * moved >= 3 * 2 * n, "{moved} of {} views differ from their image", 2 * n);
            at += 3 * n;
        }
        assert_eq!(at, viewed.components.len());
        assert_eq!(viewed.counterfactuals.len(), at * relations);
    }

    /// With `rel.counterfactual`, every real image gets, for each relation with a pixel action
    /// (dSprites' moves to other position bands, Shapes3D's changes of the object's hue), the
    /// code of the image moved so; dSprites' shape change has none, Shapes3D's shape and scale
    /// changes take a labelled image of the target component in the image's room.
    #[test]
    fn counterfactual_codes_are_the_codes_of_the_moved_images() {
        for (task, acts, donated) in [("dsprites", "move_", false), ("shapes3d", "hue_", true)] {
            let mut config = Config::preset(Preset::Default, task).unwrap();
            (config.tau, config.rel.pseudo_labelled, config.consistency.threshold) = (2, 10, 0.0);
            config.rel.counterfactual = 1.0;
            let ctx = Arc::new(RunContext::new(config).unwrap());
            let mut method = AbsAeMethod::new(ctx.clone()).unwrap();
            method.fit_mixture(false).unwrap();
            let mixture = method.mixture().unwrap().clone();
            let real = method.real_codes(&mixture);
            let relations = &method.relations.relations;
            assert_eq!(real.counterfactuals.len(), real.components.len() * relations.len());
            assert!(real.counterfactuals.iter().flatten().all(|c| c.len() == mixture.dim));
            let acting: Vec<bool> = relations.iter().map(|r| r.name.starts_with(acts)).collect();
            assert!(acting.contains(&true) && acting.contains(&false), "{task}");
            let donors = (0..2 * ctx.config.tau)
                .map(|j| labelled_image_counterfactuals(&method, &real, j, &acting))
                .sum::<usize>();
            assert_eq!(donors > 0, donated, "{task}: {donors} targets from donors");
            config_off_computes_none(&ctx, &mixture);
        }
    }

    /// Labelled image `j`'s counterfactual codes are the encoder's codes of the images the
    /// task's pixel action draws, present for the `acting` relations defined from its
    /// component where the action can read the image (a Shapes3D object in the floor's or the
    /// walls' hue cannot be told apart and is not repainted), else of the donated images.
    /// Returns how many came from donors.
    fn labelled_image_counterfactuals(
        method: &AbsAeMethod,
        real: &RealCodes,
        j: usize,
        acting: &[bool],
    ) -> usize {
        let ctx = &method.ctx;
        let (task, shape, len) = (&ctx.data.task, ctx.image_shape(), ctx.data.image_len());
        let aug = task.augment.as_ref().unwrap();
        let image = &method.labelled_pixels[j * len..(j + 1) * len];
        let from = real.components[j];
        let relations = &method.relations.relations;
        let mut donated = 0;
        for (r, relation) in relations.iter().enumerate() {
            let got = &real.counterfactuals[j * relations.len() + r];
            let Some(&[to]) = relation.apply(&[from]) else {
                assert!(got.is_none(), "{} is not defined here", relation.name);
                continue;
            };
            let classes = (task.component_classes(from), task.component_classes(to));
            let mut moved = counterfactual(image, shape, aug, &classes.0, &classes.1);
            let readable = makes_views_of(image, shape, aug);
            assert_eq!(moved.is_some(), acting[r] && readable, "{} from {from}", relation.name);
            if moved.is_none() {
                let donors = &method.labelled_rows_by_component()[to];
                // Every room found afresh, so the pass's caches are checked too.
                let donor_rooms = vec![OnceCell::new(); method.labelled_pixels.len() / len];
                moved = carried_nuisances(image, shape, aug).and_then(|room| {
                    method.donated_counterfactual(room, donors, &donor_rooms, j + r, aug)
                });
                donated += moved.is_some() as usize;
            }
            let want = moved.map(|m| encode_with(&method.ae.encoder, &m, shape, &ctx.device));
            // Encoded alone rather than in a batch: the products sum in another order.
            let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| (a - b).abs() < 1e-5);
            match (got, want) {
                (Some(got), Some(want)) => assert!(close(got, &want), "{}", relation.name),
                (got, want) => assert_eq!(got.is_some(), want.is_some(), "{}", relation.name),
            }
        }
        donated
    }

    fn config_off_computes_none(ctx: &Arc<RunContext>, mixture: &Mixture) {
        let mut config = ctx.config.clone();
        config.rel.counterfactual = 0.0;
        let ctx = Arc::new(RunContext::new(config).unwrap());
        let method = AbsAeMethod::new(ctx).unwrap();
        assert!(method.real_codes(mixture).counterfactuals.is_empty());
    }

    /// The decoder-only steps move the decoder and leave the encoder (and so every code, the
    /// mixture and the ReL's inputs) as it was.
    #[test]
    fn decoder_steps_train_the_decoder_alone() {
        let mut config = Config::preset(Preset::Default, "dsprites").unwrap();
        (config.tau, config.train.batch_size, config.cycle.batch) = (2, 8, 4);
        (config.train.warmup_steps, config.train.steps) = (1, 3);
        (config.rel.finetune_steps, config.cycle.decoder_steps) = (1, 2);
        let ctx = Arc::new(RunContext::new(config).unwrap());
        let mut method = AbsAeMethod::new(ctx.clone()).unwrap();
        method.fit_mixture(false).unwrap();
        let codes = method.encode_labelled();
        let decode = |m: &AbsAeMethod| {
            let z = code_tensor(codes[..4 * ctx.arch.latent].to_vec(), ctx.arch.latent, &m.device);
            m.ae.decoder.valid().forward(z.inner()).into_data().try_to_vec::<f32>().unwrap()
        };
        let before = decode(&method);
        assert_eq!(method.phase(4), "decoder");
        let losses = method.step(4).unwrap();
        method.step(5).unwrap();
        assert!(losses.recon.is_some() && losses.cycle.is_some(), "{losses:?}");
        assert!(losses.relational.is_none() && losses.adversarial.is_none(), "{losses:?}");
        assert_eq!(method.encode_labelled(), codes, "the encoder is frozen");
        assert_ne!(decode(&method), before, "the decoder learns");
    }

    /// With `rel.during_autoencoder` off the ReL sits out the autoencoder's steps after the
    /// switch and trains in the ReL-only steps; on, it trains in both.
    #[test]
    fn the_rel_trains_beside_the_autoencoder_only_when_asked() {
        for during in [true, false] {
            let mut config = Config::preset(Preset::Default, "dsprites").unwrap();
            (config.tau, config.train.batch_size, config.cycle.batch) = (2, 8, 4);
            (config.supervised.labelled_batch, config.rel.batch_size) = (4, 8);
            (config.train.warmup_steps, config.train.steps) = (1, 3);
            (config.rel.finetune_steps, config.rel.during_autoencoder) = (1, during);
            let mut method = AbsAeMethod::new(Arc::new(RunContext::new(config).unwrap())).unwrap();
            // The ReL's output for a fixed row stands for its weights.
            let weights = |m: &AbsAeMethod| {
                let width = m.relations.input_width(m.ctx.arch.latent);
                let row = code_tensor(vec![0.5; width], width, &m.device).inner();
                m.rel.valid().forward(row).into_data().try_into_vec::<f32>().unwrap()
            };
            method.step(0).unwrap();
            let start = weights(&method);
            assert_eq!(method.phase(1), "mixture");
            let mixture_step = method.step(1).unwrap();
            assert_eq!(mixture_step.relational.is_some(), during, "during = {during}");
            assert_eq!(weights(&method) != start, during, "during = {during}");
            assert_eq!(method.phase(3), "rel-finetune");
            method.step(2).unwrap();
            let before = weights(&method);
            assert!(method.step(3).unwrap().relational.is_some());
            assert_ne!(weights(&method), before, "the ReL-only step trains it");
        }
    }

    #[test]
    fn consistency_share_decides_how_many_batch_images_get_a_strong_view() {
        for (share, strong) in [(0.0, 0), (0.25, 2), (0.5, 4), (1.0, 8)] {
            let mut config = Config::preset(Preset::Default, "dsprites").unwrap();
            (config.tau, config.supervised.labelled_batch, config.consistency.share) =
                (2, 3, share);
            let ctx = Arc::new(RunContext::new(config).unwrap());
            let mut method = AbsAeMethod::new(ctx.clone()).unwrap();
            method.fit_mixture(false).unwrap();
            let clean = ctx.data.render_batch(&ctx.split.train[..8]);
            let views = method.extra_views(&clean, &mut stream(0, Stream::Augment, 0));
            let len = ctx.data.image_len();
            assert_eq!(
                (views.labelled_targets.len(), views.labelled_pixels.len()),
                (3, 3 * len),
                "share {share}"
            );
            assert_eq!(views.strong_pixels.len(), strong * len, "share {share}");
        }
    }
}
