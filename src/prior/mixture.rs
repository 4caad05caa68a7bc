//! The mixture prior: one Gaussian per component, fitted to the codes of the labelled images,
//! equally weighted or by the shares of the data each component holds, with densities,
//! classification and typicality.
//!
//! The mixture's maths lives here twice on purpose: in f64 on the CPU for classification and
//! evaluation (exact, used on thousands of codes at once), and as burn tensors for the
//! training losses that need gradients (the ReL's NLL and the supervised posterior).

use burn::prelude::*;
use nalgebra::{DMatrix, DVector};
use rand::Rng;
use rand::distr::weighted::WeightedIndex;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::{Error, Result};

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// A Gaussian mixture; covariances kept by their Cholesky factors.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Mixture {
    pub dim: usize,
    pub means: Vec<Vec<f64>>,
    /// Lower-triangular Cholesky factor L_k of each covariance, row-major d×d.
    pub cholesky: Vec<Vec<f64>>,
    /// log(K·π_k): each component's weight π_k against an equal share of the K; empty for
    /// equal weights (the paper), so equal mixtures compute exactly what they always did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_weight_ratios: Vec<f64>,
}

impl Mixture {
    /// Fits one component per class from `codes` (n×d, row-major) and their `components`:
    /// mean, covariance × `shrink` + `epsilon`·I, Cholesky-factored. With
    /// [`Covariance::Pooled`] every component gets the pooled within-class covariance.
    pub fn fit(
        codes: &[f32],
        dim: usize,
        components: &[usize],
        k: usize,
        covariance: Covariance,
        shrink: f64,
        epsilon: f64,
    ) -> Result<Mixture> {
        let groups: Vec<Vec<&[f32]>> = (0..k)
            .map(|c| {
                codes
                    .chunks_exact(dim)
                    .zip(components)
                    .filter(|(_, cc)| **cc == c)
                    .map(|(r, _)| r)
                    .collect()
            })
            .collect();
        if let Some((c, rows)) = groups.iter().enumerate().find(|(_, rows)| rows.len() < 2) {
            return Err(Error::Invalid(format!(
                "component {c} has {} labelled images; the mixture needs at least 2",
                rows.len()
            )));
        }
        let means: Vec<Vec<f64>> = groups.iter().map(|rows| mean(rows, dim)).collect();
        let scatters: Vec<DMatrix<f64>> =
            groups.iter().zip(&means).map(|(rows, m)| scatter(rows, m)).collect();
        let covariances: Vec<DMatrix<f64>> = match covariance {
            Covariance::PerComponent => scatters
                .iter()
                .zip(&groups)
                .map(|(s, rows)| s / (rows.len() as f64 - 1.0))
                .collect(),
            Covariance::Pooled => {
                let dof = (codes.len() / dim - k) as f64;
                let pooled = scatters.iter().fold(DMatrix::zeros(dim, dim), |acc, s| acc + s) / dof;
                vec![pooled; k]
            }
        };
        let cholesky = covariances
            .into_iter()
            .enumerate()
            .map(|(c, cov)| {
                let cov = cov * shrink + DMatrix::identity(dim, dim) * epsilon;
                nalgebra::Cholesky::new(cov).map(|ch| row_major(&ch.l())).ok_or_else(|| {
                    Error::Invalid(format!("component {c}: covariance is not positive definite"))
                })
            })
            .collect::<Result<_>>()?;
        Ok(Mixture { dim, means, cholesky, log_weight_ratios: Vec::new() })
    }

    /// Number of components.
    pub fn components(&self) -> usize {
        self.means.len()
    }

    /// The mixture with component weights proportional to `shares` (equal shares give the
    /// equal mixture itself).
    pub fn weighted(mut self, shares: &[f64]) -> Mixture {
        let total: f64 = shares.iter().sum();
        let k = self.components() as f64;
        let ratios: Vec<f64> = shares.iter().map(|s| (k * s / total).ln()).collect();
        self.log_weight_ratios =
            if ratios.iter().all(|r| r.abs() < 1e-12) { Vec::new() } else { ratios };
        self
    }

    /// log(K·π_k) of component `k` (0 under equal weights).
    fn log_weight_ratio(&self, k: usize) -> f64 {
        self.log_weight_ratios.get(k).copied().unwrap_or(0.0)
    }

    /// The weight π_k of component `k`.
    pub fn weight(&self, k: usize) -> f64 {
        self.log_weight_ratio(k).exp() / self.components() as f64
    }

    /// A component drawn by the weights.
    pub fn draw_component(&self, rng: &mut impl Rng) -> usize {
        if self.log_weight_ratios.is_empty() {
            return rng.random_range(0..self.components());
        }
        let weights = self.log_weight_ratios.iter().map(|r| r.exp());
        WeightedIndex::new(weights).expect("weights are positive and finite").sample(rng)
    }

    /// A sample of component `k`: μ_k + L_k ε.
    pub fn sample(&self, k: usize, rng: &mut impl Rng) -> Vec<f32> {
        let eps: Vec<f64> = (0..self.dim).map(|_| StandardNormal.sample(rng)).collect();
        self.colour(&eps, k)
    }

    /// μ_k + L_k ε: the point of component `k` at standardised offset ε.
    fn colour(&self, eps: &[f64], k: usize) -> Vec<f32> {
        let d = self.dim;
        let l = &self.cholesky[k];
        (0..d)
            .map(|i| {
                (self.means[k][i] + (0..=i).map(|j| l[i * d + j] * eps[j]).sum::<f64>()) as f32
            })
            .collect()
    }

    /// The standardised offset w = L_k⁻¹ (z − μ_k) of `z` from component `k` (forward
    /// substitution L w = z − μ).
    fn whiten(&self, z: &[f32], k: usize) -> Vec<f64> {
        let d = self.dim;
        let l = &self.cholesky[k];
        let mut w = vec![0.0; d];
        for i in 0..d {
            let s: f64 = (0..i).map(|j| l[i * d + j] * w[j]).sum();
            w[i] = (z[i] as f64 - self.means[k][i] - s) / l[i * d + i];
        }
        w
    }

    /// Squared Mahalanobis distance of `z` to component `k`.
    pub fn mahalanobis_sq(&self, z: &[f32], k: usize) -> f64 {
        self.whiten(z, k).iter().map(|x| x * x).sum()
    }

    /// `z` moved from component `from` to component `to` keeping its standardised offset:
    /// μ_to + L_to L_from⁻¹ (z − μ_from). Under a pooled covariance this is the translation
    /// z − μ_from + μ_to, so whatever the code holds besides its component stays.
    pub fn transport(&self, z: &[f32], from: usize, to: usize) -> Vec<f32> {
        self.colour(&self.whiten(z, from), to)
    }

    /// log det Σ_k / 2 = Σ log L_ii.
    pub fn half_log_det(&self, k: usize) -> f64 {
        (0..self.dim).map(|i| self.cholesky[k][i * self.dim + i].ln()).sum()
    }

    /// log N(z; μ_k, Σ_k) + log(K·π_k) for every component: the log density of z and k
    /// together, up to the constant log K, so its argmax and softmax are the posterior's.
    pub fn log_densities(&self, z: &[f32]) -> Vec<f64> {
        let c = 0.5 * self.dim as f64 * LN_2PI;
        (0..self.components())
            .map(|k| {
                -0.5 * self.mahalanobis_sq(z, k) - self.half_log_det(k) - c
                    + self.log_weight_ratio(k)
            })
            .collect()
    }

    /// The most likely component of `z` and its log-densities.
    pub fn classify(&self, z: &[f32]) -> (usize, Vec<f64>) {
        let ld = self.log_densities(z);
        (argmax(&ld), ld)
    }

    /// Typicality: the χ²_d tail probability of the squared Mahalanobis distance to the
    /// nearest component (small = atypical, e.g. out of distribution).
    pub fn typicality(&self, z: &[f32]) -> f64 {
        let nearest =
            (0..self.components()).map(|k| self.mahalanobis_sq(z, k)).fold(f64::INFINITY, f64::min);
        let chi = ChiSquared::new(self.dim as f64).expect("dimension is positive");
        1.0 - chi.cdf(nearest)
    }

    /// The mixture as tensors for batched training losses.
    pub fn tensors(&self, device: &Device) -> MixtureTensors {
        let (d, k) = (self.dim, self.components());
        // Stack P_kᵀ (P_k = L_k⁻¹) side by side: z·[P_1ᵀ … P_Kᵀ] − [μ_1P_1ᵀ … μ_KP_Kᵀ] whitens
        // a row z against every component in one matrix product.
        let mut stack = vec![0.0f32; d * k * d];
        let mut offsets = vec![0.0f32; k * d];
        for c in 0..k {
            let l = DMatrix::from_row_slice(d, d, &self.cholesky[c]);
            let p = l.try_inverse().expect("a Cholesky factor is invertible");
            for i in 0..d {
                for j in 0..d {
                    // (P_kᵀ)[i][j] = P_k[j][i]
                    stack[i * k * d + c * d + j] = p[(j, i)] as f32;
                }
            }
            let mu = DVector::from_row_slice(&self.means[c]);
            let off = &p * mu;
            for j in 0..d {
                offsets[c * d + j] = off[j] as f32;
            }
        }
        let log_norm: Vec<f32> = (0..k)
            .map(|c| {
                (-self.half_log_det(c) - 0.5 * d as f64 * LN_2PI + self.log_weight_ratio(c)) as f32
            })
            .collect();
        MixtureTensors {
            dim: d,
            components: k,
            whiten: Tensor::from_data(TensorData::new(stack, [d, k * d]), device),
            offsets: Tensor::from_data(TensorData::new(offsets, [1, k * d]), device),
            log_norm: Tensor::from_data(TensorData::new(log_norm, [1, k]), device),
        }
    }
}

/// The mixture on a device, for losses with gradients.
#[derive(Clone, Debug)]
pub struct MixtureTensors {
    dim: usize,
    components: usize,
    whiten: Tensor<2>,
    offsets: Tensor<2>,
    log_norm: Tensor<2>,
}

impl MixtureTensors {
    /// Number of components.
    pub fn components(&self) -> usize {
        self.components
    }

    /// log N(z_b; μ_k, Σ_k) + log(K·π_k) for a batch of codes: [B, d] → [B, K].
    pub fn log_densities(&self, z: Tensor<2>) -> Tensor<2> {
        let w = z.matmul(self.whiten.clone()) - self.offsets.clone();
        self.squared_norms(w).mul_scalar(-0.5) + self.log_norm.clone()
    }

    /// (a − b)ᵀ Σ_k⁻¹ (a − b) for every row of a difference of codes and every component k:
    /// [B, d] → [B, K], how many of each component's standard deviations the rows span.
    pub fn difference_norms(&self, difference: Tensor<2>) -> Tensor<2> {
        self.squared_norms(difference.matmul(self.whiten.clone()))
    }

    /// Sums of squares of each component's block of whitened rows: [B, K·d] → [B, K].
    fn squared_norms(&self, whitened: Tensor<2>) -> Tensor<2> {
        let b = whitened.dims()[0];
        whitened
            .powi_scalar(2)
            .reshape([b, self.components, self.dim])
            .sum_dim(2)
            .reshape([b, self.components])
    }
}

/// How the mixture's components are weighted (`prior.weights`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentWeights {
    /// Equally (the paper).
    Equal,
    /// By each component's share of a grid dataset ([`crate::tasks::Task::grid_component_shares`]).
    Grid,
}

/// How component covariances are estimated.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Covariance {
    /// Each component from its own codes (the paper).
    #[serde(rename = "component")]
    PerComponent,
    /// One within-class covariance pooled over all components: far better conditioned when
    /// τ is close to the latent size.
    Pooled,
}

impl Covariance {
    /// The name used in config files.
    pub fn name(self) -> &'static str {
        match self {
            Covariance::PerComponent => "component",
            Covariance::Pooled => "pooled",
        }
    }
}

fn mean(rows: &[&[f32]], dim: usize) -> Vec<f64> {
    (0..dim).map(|j| rows.iter().map(|r| r[j] as f64).sum::<f64>() / rows.len() as f64).collect()
}

/// Σ (x − m)(x − m)ᵀ over the rows.
fn scatter(rows: &[&[f32]], m: &[f64]) -> DMatrix<f64> {
    let dim = m.len();
    rows.iter().fold(DMatrix::zeros(dim, dim), |acc, r| {
        let d = DVector::from_iterator(dim, r.iter().zip(m).map(|(&x, m)| x as f64 - m));
        acc + &d * d.transpose()
    })
}

fn row_major(m: &DMatrix<f64>) -> Vec<f64> {
    (0..m.nrows()).flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)])).collect()
}

/// Index of the largest value.
pub fn argmax(values: &[f64]) -> usize {
    values.iter().enumerate().fold(0, |best, (i, v)| if *v > values[best] { i } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Stream, stream};

    /// log N(z; μ, Σ) by the textbook formula with an explicit inverse and determinant.
    fn slow_log_density(z: &[f64], mu: &[f64], sigma: &DMatrix<f64>) -> f64 {
        let d = z.len();
        let diff = DVector::from_iterator(d, z.iter().zip(mu).map(|(a, b)| a - b));
        let inv = sigma.clone().try_inverse().unwrap();
        let maha = (diff.transpose() * inv * &diff)[(0, 0)];
        -0.5 * maha
            - 0.5 * sigma.determinant().ln()
            - 0.5 * d as f64 * (2.0 * std::f64::consts::PI).ln()
    }

    fn fitted() -> (Mixture, Vec<f32>, Vec<usize>) {
        let mut rng = stream(1, Stream::Eval, 0);
        let d = 3;
        let mut codes = Vec::new();
        let mut comps = Vec::new();
        for c in 0..2 {
            for _ in 0..12 {
                let base = [c as f32 * 3.0, -(c as f32), 0.5];
                for (j, b) in base.iter().enumerate() {
                    codes.push(b + rng.random_range(-1.0f32..1.0) * (j as f32 + 1.0) * 0.3);
                }
                comps.push(c);
            }
        }
        (
            Mixture::fit(&codes, d, &comps, 2, Covariance::PerComponent, 0.5, 1e-3).unwrap(),
            codes,
            comps,
        )
    }

    #[test]
    fn fit_matches_mean_and_shrunk_covariance() {
        let (m, codes, comps) = fitted();
        let rows: Vec<&[f32]> =
            codes.chunks(3).zip(&comps).filter(|(_, c)| **c == 1).map(|(r, _)| r).collect();
        let mean0: f64 = rows.iter().map(|r| r[0] as f64).sum::<f64>() / rows.len() as f64;
        assert!((m.means[1][0] - mean0).abs() < 1e-9);
        let var0: f64 = rows.iter().map(|r| (r[0] as f64 - mean0).powi(2)).sum::<f64>()
            / (rows.len() - 1) as f64;
        let l = DMatrix::from_row_slice(3, 3, &m.cholesky[1]);
        let sigma = &l * l.transpose();
        assert!((sigma[(0, 0)] - (0.5 * var0 + 1e-3)).abs() < 1e-9);
        assert!(l[(0, 1)] == 0.0 && l[(0, 2)] == 0.0 && l[(1, 2)] == 0.0, "lower triangular");
    }

    #[test]
    fn pooled_covariance_is_the_within_class_average() {
        let codes = [0.0f32, 2.0, 10.0, 14.0];
        let m = Mixture::fit(&codes, 1, &[0, 0, 1, 1], 2, Covariance::Pooled, 1.0, 0.0).unwrap();
        // Scatter 2 + 8 over 4 − 2 degrees of freedom.
        assert!((m.cholesky[0][0].powi(2) - 5.0).abs() < 1e-12);
        assert_eq!(m.cholesky[0], m.cholesky[1]);
        assert_eq!(m.means, vec![vec![1.0], vec![12.0]]);
    }

    #[test]
    fn log_density_matches_the_slow_formula() {
        let (m, _, _) = fitted();
        for z in [[0.0f32, 0.0, 0.0], [3.0, -1.0, 0.4], [-2.0, 5.0, 1.0]] {
            let zf: Vec<f64> = z.iter().map(|&v| v as f64).collect();
            for (k, fast) in m.log_densities(&z).into_iter().enumerate() {
                let l = DMatrix::from_row_slice(3, 3, &m.cholesky[k]);
                let slow = slow_log_density(&zf, &m.means[k], &(&l * l.transpose()));
                assert!((fast - slow).abs() < 1e-9, "{fast} vs {slow}");
            }
        }
    }

    #[test]
    fn tensor_log_densities_match_the_cpu_ones() {
        let (m, codes, _) = fitted();
        let device = Device::flex();
        let t = m.tensors(&device);
        let z = Tensor::<2>::from_data(TensorData::new(codes.clone(), [24, 3]), &device);
        let out = t.log_densities(z).into_data().try_into_vec::<f32>().unwrap();
        for (row, got) in codes.chunks(3).zip(out.chunks(2)) {
            let want = m.log_densities(row);
            for k in 0..2 {
                assert!(
                    (got[k] as f64 - want[k]).abs() < 1e-3 * want[k].abs().max(1.0),
                    "{got:?} vs {want:?}"
                );
            }
        }
    }

    /// Weights 1 : 3 add log(2·π_k) to each log density (the weighted tensors agree), make
    /// prior samples come from the components in that proportion, and move the boundary
    /// toward the lighter component; equal shares are the unweighted mixture itself.
    #[test]
    fn weights_shift_densities_and_samples_by_the_components_shares() {
        let (m, codes, _) = fitted();
        assert_eq!(m.clone().weighted(&[2.0, 2.0]), m);
        let w = m.clone().weighted(&[1.0, 3.0]);
        let ratios = [(2.0f64 * 0.25).ln(), (2.0f64 * 0.75).ln()];
        for z in codes.chunks(3) {
            let (plain, weighted) = (m.log_densities(z), w.log_densities(z));
            for k in 0..2 {
                assert!((weighted[k] - plain[k] - ratios[k]).abs() < 1e-12);
            }
        }
        let device = Device::flex();
        let z = Tensor::<2>::from_data(TensorData::new(codes.clone(), [24, 3]), &device);
        let out = w.tensors(&device).log_densities(z).into_data().try_into_vec::<f32>().unwrap();
        for (row, got) in codes.chunks(3).zip(out.chunks(2)) {
            let want = w.log_densities(row);
            assert!(
                (0..2).all(|k| (got[k] as f64 - want[k]).abs() < 1e-3 * want[k].abs().max(1.0))
            );
        }
        let mut rng = stream(3, Stream::PriorSample, 0);
        let n = 20_000;
        let second = (0..n).filter(|_| w.draw_component(&mut rng) == 1).count() as f64 / n as f64;
        assert!((second - 0.75).abs() < 0.015, "{second}");
        // Halfway between the means the heavier component wins, where the equal mixture's
        // densities alone decide.
        let mid: Vec<f32> =
            (0..3).map(|i| ((m.means[0][i] + m.means[1][i]) / 2.0) as f32).collect();
        let (p, q) = (m.log_densities(&mid), w.log_densities(&mid));
        assert!(q[1] - q[0] > p[1] - p[0] + 1.0);
    }

    #[test]
    fn typicality_is_the_chi_square_tail() {
        let m = Mixture {
            dim: 2,
            means: vec![vec![0.0, 0.0]],
            cholesky: vec![vec![1.0, 0.0, 0.0, 1.0]],
            log_weight_ratios: Vec::new(),
        };
        // For d = 2 the χ² tail is exp(−r²/2).
        for r2 in [0.5f64, 2.0, 6.0] {
            let z = [r2.sqrt() as f32, 0.0];
            assert!((m.typicality(&z) - (-r2 / 2.0).exp()).abs() < 1e-6);
        }
    }

    #[test]
    fn transport_keeps_the_standardised_offset() {
        let (m, codes, _) = fitted();
        let z = &codes[..m.dim];
        let moved = m.transport(z, 0, 1);
        let (a, b) = (m.whiten(z, 0), m.whiten(&moved, 1));
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5), "{a:?} vs {b:?}");
        let back = m.transport(&moved, 1, 0);
        assert!(z.iter().zip(&back).all(|(x, y)| (x - y).abs() < 1e-5), "{z:?} vs {back:?}");
    }

    #[test]
    fn pooled_transport_is_the_translation_between_means() {
        let (_, codes, components) = fitted();
        let m = Mixture::fit(&codes, 3, &components, 2, Covariance::Pooled, 0.5, 1e-3).unwrap();
        let z = [0.3f32, -1.2, 2.0];
        let moved = m.transport(&z, 1, 0);
        for i in 0..3 {
            let want = z[i] as f64 - m.means[1][i] + m.means[0][i];
            assert!((moved[i] as f64 - want).abs() < 1e-5, "{i}: {} vs {want}", moved[i]);
        }
    }

    #[test]
    fn too_few_codes_is_an_error() {
        let err = Mixture::fit(&[0.0, 1.0, 2.0], 1, &[0, 0, 1], 2, Covariance::Pooled, 0.1, 1e-4)
            .unwrap_err()
            .to_string();
        assert!(err.contains("component 1"), "{err}");
    }

    #[test]
    fn samples_follow_the_component() {
        let (m, _, _) = fitted();
        let mut rng = stream(2, Stream::PriorSample, 0);
        let n = 20_000;
        let mean0: f64 = (0..n).map(|_| m.sample(1, &mut rng)[0] as f64).sum::<f64>() / n as f64;
        assert!((mean0 - m.means[1][0]).abs() < 0.02);
        let prior = crate::prior::Prior::Uniform { dim: 4 };
        let u = prior.sample(1000, &mut rng);
        assert!(u.len() == 4000 && u.iter().all(|v| (-1.0..1.0).contains(v)));
    }
}
