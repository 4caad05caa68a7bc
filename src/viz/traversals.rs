//! The baselines' figures: latent traversals (each code dimension swept around a test image's
//! posterior mean, the standard way to see what a VAE's dimensions encode) and training curves.

use std::path::Path;

use rand::seq::SliceRandom;

use super::charts::save_panels;
use super::figures::{Figure, training_panels};
use super::grid::{Cell, ImageGrid};
use crate::context::image_tensor;
use crate::inference::{INFERENCE_BATCH, Run};
use crate::rng::{Stream, stream};
use crate::{Error, Result};

/// Values each dimension is set to, from −2 to 2 (the prior's ±2σ).
const TRAVERSAL_STEPS: usize = 9;
const TRAVERSAL_RANGE: f32 = 2.0;
/// Test images whose posteriors give each dimension's mean KL.
const KL_IMAGES: usize = 512;

/// Writes a baseline run's figures into `dir` (created if needed).
pub fn write_baseline_figures(run: &Run, metrics: &Path, dir: &Path) -> Result<Vec<Figure>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
    let mut figures = vec![Figure {
        file: "traversals.png".into(),
        caption: format!(
            "Latent traversals: one test image's posterior mean with one dimension set to each of {TRAVERSAL_STEPS} values in [−{TRAVERSAL_RANGE}, {TRAVERSAL_RANGE}], decoded; rows are labelled with the dimension's mean KL over test images (near 0: unused)."
        ),
    }];
    latent_traversals(run)?.save(&dir.join(&figures[0].file))?;
    let curves = training_panels(metrics)?;
    if !curves.is_empty() {
        figures.push(Figure {
            file: "training_curves.png".into(),
            caption: "Training losses from metrics.jsonl.".into(),
        });
        save_panels(&dir.join(&figures[1].file), "Training curves", &curves, 3)?;
    }
    Ok(figures)
}

/// One row per code dimension, ordered by mean KL (most informative first).
pub fn latent_traversals(run: &Run) -> Result<ImageGrid> {
    let d = run.model.latent();
    let mut order = run.test().to_vec();
    order.shuffle(&mut stream(run.ctx.config.seed, Stream::Figures, 0));
    order.truncate(KL_IMAGES.max(1));
    let (means, log_vars) = posteriors(run, &order)?;
    let kl = mean_kl_per_dimension(&means, &log_vars, d);
    let mut dims: Vec<usize> = (0..d).collect();
    dims.sort_by(|&a, &b| kl[b].total_cmp(&kl[a]));
    let start = &means[..d];
    let values: Vec<f32> = (0..TRAVERSAL_STEPS)
        .map(|i| -TRAVERSAL_RANGE + 2.0 * TRAVERSAL_RANGE * i as f32 / (TRAVERSAL_STEPS - 1) as f32)
        .collect();
    let mut grid = ImageGrid::new(
        format!("Latent traversals ({})", run.ctx.config.model.name()),
        run.image_shape(),
    );
    grid.column_headers = std::iter::once("input".to_string())
        .chain(values.iter().map(|v| format!("{v:+.1}")))
        .collect();
    let input = run.ctx.data.render_batch(&order[..1]);
    for &j in &dims {
        let codes: Vec<f32> = values
            .iter()
            .flat_map(|&v| start.iter().enumerate().map(move |(k, &m)| if k == j { v } else { m }))
            .collect();
        let pixels = run.decode(&codes);
        let len = pixels.len() / TRAVERSAL_STEPS;
        let mut row = vec![Some(Cell { pixels: input.clone(), caption: None })];
        row.extend(
            pixels.chunks_exact(len).map(|p| Some(Cell { pixels: p.to_vec(), caption: None })),
        );
        grid.row_labels.push(format!("z{j} (KL {:.2})", kl[j]));
        grid.rows.push(row);
    }
    Ok(grid)
}

/// Posterior means and log-variances (each row-major n×d) of the task's images `items`.
fn posteriors(run: &Run, items: &[usize]) -> Result<(Vec<f32>, Vec<f32>)> {
    let (mut means, mut log_vars) = (Vec::new(), Vec::new());
    for chunk in items.chunks(INFERENCE_BATCH) {
        let x = image_tensor(run.ctx.data.render_batch(chunk), run.image_shape(), &run.ctx.device);
        let (mean, log_var) = run
            .model
            .posterior(x)
            .ok_or_else(|| Error::Invalid("latent traversals need a VAE's posterior".into()))?;
        means.extend(mean.into_data().try_into_vec::<f32>().expect("f32 means"));
        log_vars.extend(log_var.into_data().try_into_vec::<f32>().expect("f32 log-variances"));
    }
    Ok((means, log_vars))
}

/// Mean over rows of ½(μ² + σ² − log σ² − 1), per dimension.
pub fn mean_kl_per_dimension(means: &[f32], log_vars: &[f32], d: usize) -> Vec<f64> {
    let n = (means.len() / d).max(1) as f64;
    let mut kl = vec![0.0; d];
    for (i, (&m, &lv)) in means.iter().zip(log_vars).enumerate() {
        kl[i % d] += 0.5 * (m as f64 * m as f64 + (lv as f64).exp() - lv as f64 - 1.0) / n;
    }
    kl
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kl_per_dimension_by_hand() {
        // Two rows, two dims: dim 0 has μ = ±1, σ² = 1 (KL ½ each); dim 1 is the prior (KL 0).
        let kl = mean_kl_per_dimension(&[1.0, 0.0, -1.0, 0.0], &[0.0, 0.0, 0.0, 0.0], 2);
        assert!((kl[0] - 0.5).abs() < 1e-12 && kl[1].abs() < 1e-12, "{kl:?}");
    }
}
