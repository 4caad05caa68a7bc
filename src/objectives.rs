//! The loss terms the methods are trained with, apart from the networks they train: the
//! reconstruction, the adversarial game of the AbsAE's encoder and discriminator, the default
//! mode's posterior cross-entropy and consistency terms, and the baselines' KL and total
//! correlation. The ReL's own objective is with the ReL ([`crate::rel::learner::objective`]).

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softplus};

use crate::backend::pointwise::bce_with_logits_sum;
use crate::prior::MixtureTensors;

/// Binary cross-entropy of logits against targets, summed per image, averaged over the batch:
/// softplus(l) − x·l.
pub fn reconstruction_bce(logits: Tensor<4>, targets: Tensor<4>) -> Tensor<1> {
    let b = logits.dims()[0];
    bce_with_logits_sum(logits, targets).div_scalar(b as f32)
}

/// The encoder's side of the adversarial game: −log σ(D(z)) averaged over its codes, small
/// when the discriminator takes them for prior samples.
pub fn encoder_adversarial(logits_on_codes: Tensor<2>) -> Tensor<1> {
    softplus(logits_on_codes.neg(), 1.0).mean()
}

/// The discriminator's loss: −log σ(D(prior sample)) − log(1 − σ(D(code))), each averaged.
pub fn discriminator(logits_on_prior: Tensor<2>, logits_on_codes: Tensor<2>) -> Tensor<1> {
    softplus(logits_on_prior.neg(), 1.0).mean() + softplus(logits_on_codes, 1.0).mean()
}

/// Mean cross-entropy of the mixture posterior p(k | z) against `targets`.
pub fn posterior_cross_entropy(mix: &MixtureTensors, z: Tensor<2>, targets: &[usize]) -> Tensor<1> {
    let device = z.device();
    let logp = log_softmax(mix.log_densities(z), 1);
    (logp * one_hot(targets, mix.components(), &device)).sum_dim(1).mean().neg()
}

/// The latent cycle: the mean squared Mahalanobis distance, under each row's component in
/// `components`, between codes `start` drawn from the prior and `back`, what the encoder makes
/// of their decoded images. Small when a code decodes to an image that encodes to the same
/// place, which is what a relation's output needs to survive being drawn and read again.
pub fn latent_cycle(
    mix: &MixtureTensors,
    back: Tensor<2>,
    start: Tensor<2>,
    components: &[usize],
) -> Tensor<1> {
    let device = back.device();
    let norms = mix.difference_norms(back - start);
    (norms * one_hot(components, mix.components(), &device)).sum_dim(1).mean()
}

/// Cross-entropy of the strong views' posterior against the confident pseudo-labels of the
/// weak views (FixMatch-style): the weak view's most likely component where its posterior
/// reaches `threshold`. None when no code in the batch is confident enough.
pub fn consistency(
    mix: &MixtureTensors,
    z_weak: Tensor<2>,
    z_strong: Tensor<2>,
    threshold: f32,
) -> Option<Tensor<1>> {
    let device = z_weak.device();
    let b = z_weak.dims()[0];
    let posterior = log_softmax(mix.log_densities(z_weak.detach()), 1).exp();
    let post = posterior.into_data().try_into_vec::<f32>().expect("f32 posterior");
    let k = mix.components();
    let mut mask = vec![0.0f32; b * k];
    let mut count = 0;
    for (row, p) in post.chunks_exact(k).enumerate() {
        let (best, &pmax) =
            p.iter().enumerate().fold((0, &p[0]), |a, (i, v)| if *v > *a.1 { (i, v) } else { a });
        if pmax >= threshold {
            mask[row * k + best] = 1.0;
            count += 1;
        }
    }
    if count == 0 {
        return None;
    }
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [b, k]), &device);
    let logp = log_softmax(mix.log_densities(z_strong), 1);
    Some((logp * mask).sum().neg().div_scalar(count as f32).reshape([1]))
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

/// Cross-entropy of FactorVAE's discriminator: codes are class 0, permuted codes class 1,
/// each half of the loss weighted ½.
pub fn total_correlation_discriminator(on_codes: Tensor<2>, on_permuted: Tensor<2>) -> Tensor<1> {
    let b = on_codes.dims()[0];
    let real = log_softmax(on_codes, 1).slice([0..b, 0..1]).mean();
    let shuffled = log_softmax(on_permuted, 1).slice([0..b, 1..2]).mean();
    (real + shuffled).mul_scalar(-0.5)
}

/// One-hot rows [n, k].
pub fn one_hot(ids: &[usize], k: usize, device: &Device) -> Tensor<2> {
    let mut v = vec![0.0f32; ids.len() * k];
    for (row, &id) in ids.iter().enumerate() {
        v[row * k + id] = 1.0;
    }
    Tensor::from_data(TensorData::new(v, [ids.len(), k]), device)
}

/// The value of a one-element loss.
pub fn scalar(t: &Tensor<1>) -> f32 {
    t.clone().into_scalar::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prior::{Covariance, Mixture};

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
        assert!((value(total_correlation_discriminator(logits, perm)) - want).abs() < 1e-6);
    }

    #[test]
    fn adversarial_terms_by_hand() {
        // softplus(−2) for the encoder's one code; softplus(−1) + softplus(2) for the discriminator.
        let softplus = |x: f32| (1.0 + x.exp()).ln();
        assert!((value(encoder_adversarial(tensor2(&[2.0], 1))) - softplus(-2.0)).abs() < 1e-6);
        let d = value(discriminator(tensor2(&[1.0], 1), tensor2(&[2.0], 1)));
        assert!((d - (softplus(-1.0) + softplus(2.0))).abs() < 1e-6);
    }

    /// Two well-separated 1-D components at ±5 with unit variance.
    fn two_components() -> MixtureTensors {
        let codes = [-5.5f32, -4.5, 4.5, 5.5];
        let m = Mixture::fit(&codes, 1, &[0, 0, 1, 1], 2, Covariance::Pooled, 2.0, 0.0).unwrap();
        m.tensors(&Device::flex())
    }

    #[test]
    fn posterior_cross_entropy_is_small_for_the_right_component_only() {
        let mix = two_components();
        let right = value(posterior_cross_entropy(&mix, tensor2(&[-5.0, 5.0], 2), &[0, 1]));
        let wrong = value(posterior_cross_entropy(&mix, tensor2(&[-5.0, 5.0], 2), &[1, 0]));
        assert!(right < 1e-3 && wrong > 10.0, "{right} {wrong}");
    }

    #[test]
    fn latent_cycle_is_the_mahalanobis_distance_under_each_rows_component() {
        let codes = [-5.5f32, -4.5, 4.5, 5.5, -0.2, 0.1, 0.3, -0.4];
        let comps = [0, 0, 1, 1];
        let m = Mixture::fit(&codes[..4], 1, &[0, 0, 1, 1], 2, Covariance::PerComponent, 1.0, 0.1)
            .unwrap();
        let wide = Mixture::fit(
            &[-7.0, -3.0, 4.9, 5.1],
            1,
            &[0, 0, 1, 1],
            2,
            Covariance::PerComponent,
            1.0,
            0.0,
        )
        .unwrap();
        for mixture in [m, wide] {
            let mix = mixture.tensors(&Device::flex());
            let (start, back) = (&codes[..4], &codes[4..]);
            let loss = value(latent_cycle(&mix, tensor2(back, 4), tensor2(start, 4), &comps));
            // The slow reference: the difference placed at the component's mean.
            let want: f64 = (0..4)
                .map(|i| {
                    let k = comps[i];
                    let moved = mixture.means[k][0] as f32 + back[i] - start[i];
                    mixture.mahalanobis_sq(&[moved], k)
                })
                .sum::<f64>()
                / 4.0;
            assert!((loss as f64 - want).abs() < 1e-4 * want.max(1.0), "{loss} vs {want}");
            let same = latent_cycle(&mix, tensor2(start, 4), tensor2(start, 4), &comps);
            assert!(value(same).abs() < 1e-6);
        }
    }

    #[test]
    fn consistency_uses_only_confident_weak_views() {
        let mix = two_components();
        // The weak view at 0 is undecided, so only the first row counts: its strong view at +5
        // disagrees with the weak view's component 0.
        let loss =
            consistency(&mix, tensor2(&[-5.0, 0.0], 2), tensor2(&[5.0, -5.0], 2), 0.95).unwrap();
        let alone = posterior_cross_entropy(&mix, tensor2(&[5.0], 1), &[0]);
        assert!((value(loss) - value(alone)).abs() < 1e-3);
        assert!(consistency(&mix, tensor2(&[0.0], 1), tensor2(&[5.0], 1), 0.95).is_none());
    }
}
