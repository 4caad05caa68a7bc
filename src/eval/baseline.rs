//! What the unlabelled images buy: a multinomial logistic regression on raw pixels, trained
//! on the same τ·N labelled images the AbsAE's labels come from and scored on the same test
//! images, beside the AbsAE's own classification.

use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::inference::{INFERENCE_BATCH, Run};

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

/// Fits the baseline to the run's labelled images and scores it on its test images; None when
/// the fit fails (it needs two components or more).
pub fn pixel_baseline(run: &Run) -> Option<PixelBaseline> {
    let (data, split) = (&run.ctx.data, &run.ctx.split);
    let labelled = &split.labelled;
    let targets: Array1<usize> = labelled.iter().map(|&i| data.components[i]).collect();
    let fitted = MultiLogisticRegression::default()
        .alpha(ALPHA)
        .max_iterations(MAX_ITERATIONS)
        .fit(&Dataset::new(pixel_rows(run, labelled), targets))
        .ok()?;
    let test = run.test();
    let correct: usize = test
        .chunks(INFERENCE_BATCH)
        .map(|items| {
            let predicted = fitted.predict(&pixel_rows(run, items));
            predicted.iter().zip(items).filter(|(p, i)| **p == data.components[**i]).count()
        })
        .sum();
    Some(PixelBaseline {
        method: "multinomial logistic regression on raw pixels (L2 1.0, L-BFGS, 100 iterations)"
            .into(),
        train_images: labelled.len(),
        test_images: test.len(),
        accuracy: correct as f64 / test.len().max(1) as f64,
    })
}

/// The images `items` as rows of pixel values.
fn pixel_rows(run: &Run, items: &[usize]) -> Array2<f64> {
    let len = run.ctx.data.image_len();
    let pixels: Vec<f64> = run.ctx.data.render_batch(items).into_iter().map(f64::from).collect();
    Array2::from_shape_vec((items.len(), len), pixels).expect("one row per image")
}
