//! The priors of the latent space: Uniform(−1, 1)^d during warm-up, then a Gaussian mixture
//! with one component per combination of kept factor classes ([`mixture`]),
//! and the α rules that say how confidently a code lands in a component ([`alpha`]).

pub mod alpha;
pub mod mixture;

use rand::Rng;
use serde::{Deserialize, Serialize};

pub use alpha::{AlphaRule, max_posterior};
pub use mixture::{ComponentWeights, Covariance, Mixture, MixtureTensors, argmax};

/// The prior in force: uniform during warm-up, then the mixture.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum Prior {
    Uniform { dim: usize },
    Mixture(Mixture),
}

impl Prior {
    /// `n` samples, row-major n×d.
    pub fn sample(&self, n: usize, rng: &mut impl Rng) -> Vec<f32> {
        match self {
            Prior::Uniform { dim } => {
                (0..n * dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()
            }
            Prior::Mixture(m) => {
                (0..n).flat_map(|_| m.sample(m.draw_component(rng), rng)).collect()
            }
        }
    }
}
