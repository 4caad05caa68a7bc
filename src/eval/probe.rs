//! The nuisance probe: a small classifier on codes that reads each nuisance factor, trained on
//! the labelled images' codes and their nuisance labels (all of a dataset's labels are known
//! for the images τ labels; only the kept factors' are used in training). It judges whether a
//! relation kept an image's nuisances.

use linfa::prelude::*;
use linfa_logistic::{MultiFittedLogisticRegression, MultiLogisticRegression};
use ndarray::{Array1, Array2};

use crate::inference::Run;

/// Nuisance factors probed have at most this many classes among the labelled images (HWF's
/// thousand writers cannot be read from τ·N codes).
const MAX_CLASSES: usize = 50;
/// Light L2 weight: the codes have few dimensions and the labelled images are few.
const ALPHA: f64 = 1e-2;

/// A fitted probe of every readable nuisance factor.
pub struct NuisanceProbe {
    /// Dataset factor indices probed.
    pub factors: Vec<usize>,
    models: Vec<MultiFittedLogisticRegression<f64, usize>>,
    dim: usize,
}

impl NuisanceProbe {
    /// Fits the probe to the codes (row-major n×d) of the run's labelled images; None when the
    /// task has no nuisance factor the labelled images vary in.
    pub fn fit(run: &Run, labelled_codes: &[f32]) -> Option<NuisanceProbe> {
        let (data, dim) = (&run.ctx.data, run.model.latent());
        let task = &data.task;
        let classes: Vec<Vec<usize>> = run
            .ctx
            .split
            .labelled
            .iter()
            .map(|&i| data.dataset.factor_classes(data.indices[i]))
            .collect();
        let x = rows(labelled_codes, dim);
        let (mut factors, mut models) = (Vec::new(), Vec::new());
        for f in 0..task.factor_names.len() {
            if task.kept.iter().any(|k| k.factor == f) {
                continue;
            }
            let y: Array1<usize> = classes.iter().map(|c| c[f]).collect();
            let mut distinct: Vec<usize> = y.to_vec();
            distinct.sort_unstable();
            distinct.dedup();
            if !(2..=MAX_CLASSES).contains(&distinct.len()) {
                continue;
            }
            if let Ok(model) =
                MultiLogisticRegression::default().alpha(ALPHA).fit(&Dataset::new(x.clone(), y))
            {
                factors.push(f);
                models.push(model);
            }
        }
        (!factors.is_empty()).then_some(NuisanceProbe { factors, models, dim })
    }

    /// For each code, whether the probe reads every probed nuisance as in `truth` (each code's
    /// dataset factor classes).
    pub fn kept(&self, codes: &[f32], truth: &[Vec<usize>]) -> Vec<bool> {
        let x = rows(codes, self.dim);
        let mut kept = vec![true; truth.len()];
        for (&f, model) in self.factors.iter().zip(&self.models) {
            for ((k, predicted), t) in kept.iter_mut().zip(model.predict(&x)).zip(truth) {
                *k &= predicted == t[f];
            }
        }
        kept
    }
}

fn rows(codes: &[f32], dim: usize) -> Array2<f64> {
    Array2::from_shape_vec((codes.len() / dim, dim), codes.iter().map(|&v| v as f64).collect())
        .expect("whole codes")
}
