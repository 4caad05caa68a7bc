//! What the unlabelled images buy: a multinomial logistic regression on raw pixels, trained
//! on the same τ·N labelled images the AbsAE's labels come from and scored on the same test
//! images, beside the AbsAE's own classification.

use linfa::prelude::*;
use linfa_logistic::{MultiFittedLogisticRegression, MultiLogisticRegression};
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::inference::Run;

/// The pixel baseline's test accuracy (`eval.json` `baseline`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PixelBaseline {
    pub method: String,
    /// Labelled images it was fitted to.
    pub train_images: usize,
    pub test_images: usize,
    /// Share of test images whose component it predicts.
    pub accuracy: f64,
}

/// L2 weight and iteration budget of the fit: linfa's defaults.
const ALPHA: f64 = 1.0;
const MAX_ITERATIONS: u64 = 100;

/// The baseline fitted to the run's labelled images, counting its right answers on the test
/// images as the evaluation's single pass over them hands it each batch's pixels.
pub struct FittedBaseline {
    model: MultiFittedLogisticRegression<f64, usize>,
    train_images: usize,
    tested: usize,
    correct: usize,
}

impl FittedBaseline {
    /// Fits the baseline to the run's labelled images; None when the fit fails (it needs two
    /// components or more).
    pub fn fit(run: &Run) -> Option<FittedBaseline> {
        let (data, labelled) = (&run.ctx.data, &run.ctx.split.labelled);
        let targets: Array1<usize> = labelled.iter().map(|&i| data.components[i]).collect();
        let pixels = data.render_batch(labelled);
        let model = MultiLogisticRegression::default()
            .alpha(ALPHA)
            .max_iterations(MAX_ITERATIONS)
            .fit(&Dataset::new(pixel_rows(&pixels, labelled.len()), targets))
            .ok()?;
        Some(FittedBaseline { model, train_images: labelled.len(), tested: 0, correct: 0 })
    }

    /// Scores the test images `items`, whose `pixels` these are.
    pub fn score(&mut self, run: &Run, items: &[usize], pixels: &[f32]) {
        let predicted = self.model.predict(&pixel_rows(pixels, items.len()));
        let components = &run.ctx.data.components;
        self.correct += predicted.iter().zip(items).filter(|(p, i)| **p == components[**i]).count();
        self.tested += items.len();
    }

    /// The baseline's accuracy over every test image scored.
    pub fn report(&self) -> PixelBaseline {
        PixelBaseline {
            method:
                "multinomial logistic regression on raw pixels (L2 1.0, L-BFGS, 100 iterations)"
                    .into(),
            train_images: self.train_images,
            test_images: self.tested,
            accuracy: self.correct as f64 / self.tested.max(1) as f64,
        }
    }
}

/// `n` images' pixels as rows of f64 values.
fn pixel_rows(pixels: &[f32], n: usize) -> Array2<f64> {
    let values: Vec<f64> = pixels.iter().map(|&p| f64::from(p)).collect();
    Array2::from_shape_vec((n, values.len() / n.max(1)), values).expect("one row per image")
}
