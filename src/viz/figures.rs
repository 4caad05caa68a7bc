//! The figures of a run (`RUN/figures/*.png`): decoded prior means, relation grids and chains,
//! accuracy against α, training curves, and a PCA of the test codes.

use std::path::Path;

use nalgebra::{DMatrix, SymmetricEigen};
use rand::seq::{IndexedRandom, SliceRandom};

use super::charts::{Panel, Scatter, Series, save_panels, save_scatter};
use super::grid::{Cell, ImageGrid};
use crate::eval::{ALPHAS, DEPTHS, EvalReport, RelationalRow};
use crate::inference::{AbsAeModel, Run};
use crate::rel::Application;
use crate::rng::{Stream, stream};
use crate::run_dir::RunDir;
use crate::tasks;
use crate::{Error, Result};

/// A written figure: its file name under `figures/` and what it shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub file: String,
    pub caption: String,
}

/// Test images shown in the relation grid.
const RELATION_GRID_ROWS: usize = 6;
/// Longest relation chain drawn.
const CHAIN_DEPTH: usize = 10;
/// Random mixed chains drawn below the one-relation chains.
const MIXED_CHAINS: usize = 2;
/// Test codes in the PCA plot.
const PCA_POINTS: usize = 3000;

/// Writes every figure of the run into `dir` (created if needed) and returns them in report order.
pub fn write_figures(
    run: &Run,
    model: &AbsAeModel,
    report: &EvalReport,
    run_dir: &RunDir,
) -> Result<Vec<Figure>> {
    let (metrics, dir) = (&run_dir.metrics(), &run_dir.figures());
    std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
    let mut figures = Vec::new();
    let mut add = |file: &str, caption: String| {
        figures.push(Figure { file: file.into(), caption });
        dir.join(file)
    };
    prior_means(run, model).save(&add(
        "prior_means.png",
        "Decoded mean of every prior component (paper figures 6–8).".into(),
    ))?;
    relation_grid(run, model).save(&add(
        "relations.png",
        "Test images, their reconstructions, and each relation applied once by the ReL, decoded; captions give the component the result is classified as (✗ where it is not the intended one).".into(),
    ))?;
    if let Some(grid) = counterfactual_grid(run, model) {
        grid.save(&add(
            "counterfactuals.png",
            "Each relation applied once to test images, beside the true counterfactual the renderer draws (the moved factors with the test image's nuisances); captions: the component the decoded result is classified as, and its IoU (grey) or MSE (colour) with the counterfactual.".into(),
        ))?;
    }
    relation_chains(run, model).save(&add(
        "chains.png",
        format!("Relation chains of depth up to {CHAIN_DEPTH} from one test image (paper figures 9–12): each relation repeated, then random mixed chains."),
    ))?;
    save_panels(
        &add(
            "classification_alpha.png",
            "Latent classification accuracy and accepted ratio against α (paper figure 2).".into(),
        ),
        "Latent classification against α",
        &classification_panels(report),
        2,
    )?;
    save_panels(
        &add(
            "relational_alpha.png",
            "Relational accuracy and accepted ratio against α, one line per depth (paper figure 3).".into(),
        ),
        "Relational accuracy against α",
        &relational_panels(report),
        3,
    )?;
    let curves = training_panels(metrics)?;
    if !curves.is_empty() {
        save_panels(
            &add("training_curves.png", "Training losses from metrics.jsonl.".into()),
            "Training curves",
            &curves,
            3,
        )?;
    }
    save_scatter(&add("pca.png", "Test codes projected on their first two principal components, coloured by true component; crosses are the component means.".into()), &pca_scatter(run, model))?;
    if let Some(panel) = ood_panel(&run_dir.ood_scores())? {
        let caption = "Out-of-distribution scores of the test split and of each `eval --ood` source (ood-scores.csv): share of each source's images per score bin.";
        save_panels(&add("ood.png", caption.into()), "Out-of-distribution scores", &[panel], 1)?;
    }
    Ok(figures)
}

/// Bins of the OOD score histogram.
const OOD_BINS: usize = 40;

/// A histogram of `ood-scores.csv`, one line per source; None without the file.
pub fn ood_panel(csv: &Path) -> Result<Option<Panel>> {
    if !csv.exists() {
        return Ok(None);
    }
    let bad = |e: &dyn std::fmt::Display| Error::file(csv, e);
    let mut reader = csv::Reader::from_path(csv).map_err(|e| bad(&e))?;
    let mut by_source: Vec<(String, Vec<f64>)> = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(&e))?;
        let score: f64 = record
            .get(2)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad(&format!("row {}: no score", n + 2)))?;
        let source = record.get(0).unwrap_or("").to_string();
        match by_source.iter_mut().find(|(s, _)| *s == source) {
            Some((_, v)) => v.push(score),
            None => by_source.push((source, vec![score])),
        }
    }
    let all: Vec<f64> =
        by_source.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| v.is_finite()).collect();
    let (lo, hi) =
        all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    if all.is_empty() || lo >= hi {
        return Ok(None);
    }
    let width = (hi - lo) / OOD_BINS as f64;
    let series = by_source
        .into_iter()
        .map(|(label, values)| {
            let mut counts = vec![0usize; OOD_BINS];
            for v in values.iter().filter(|v| v.is_finite()) {
                counts[(((v - lo) / width) as usize).min(OOD_BINS - 1)] += 1;
            }
            let n = values.len().max(1) as f64;
            let points = counts
                .iter()
                .enumerate()
                .map(|(b, &c)| (lo + (b as f64 + 0.5) * width, c as f64 / n))
                .collect();
            Series::new(label, points)
        })
        .collect();
    Ok(Some(Panel {
        title: "score distribution".into(),
        x_label: "OOD score (higher: further out)".into(),
        y_label: "share of images".into(),
        series,
        y_range: None,
    }))
}

/// Rows by the first kept factor's class, columns by the rest (or a square layout when
/// that would be too wide).
pub fn prior_means(run: &Run, model: &AbsAeModel) -> ImageGrid {
    let task = &run.ctx.data.task;
    let k = model.mixture.components();
    let first = &task.kept[0];
    let by_first = k / first.classes() <= 16;
    let columns = if by_first { k / first.classes() } else { (k as f64).sqrt().ceil() as usize };
    let pixels = run.decode(&means_f32(model));
    let len = pixels.len() / k;
    let mut grid =
        ImageGrid::new(format!("Decoded prior means ({k} components)"), run.image_shape());
    for (c, image) in pixels.chunks_exact(len).enumerate() {
        if c % columns == 0 {
            grid.rows.push(Vec::new());
            grid.row_labels.push(if by_first {
                format!("{}={}", first.name, first.class_names[task.component_classes(c)[0]])
            } else {
                String::new()
            });
        }
        let caption =
            if by_first { rest_label(run, c) } else { run.ctx.data.task.component_short_label(c) };
        grid.rows
            .last_mut()
            .expect("a row")
            .push(Some(Cell { pixels: image.to_vec(), caption: Some(caption) }));
    }
    grid
}

/// The component means as one row-major k×d buffer of codes.
fn means_f32(model: &AbsAeModel) -> Vec<f32> {
    model.mixture.means.iter().flatten().map(|&v| v as f32).collect()
}

/// The classes of every kept factor but the first, e.g. `left/top`.
fn rest_label(run: &Run, component: usize) -> String {
    let task = &run.ctx.data.task;
    let classes = task.component_classes(component);
    task.kept
        .iter()
        .zip(classes)
        .skip(1)
        .map(|(k, c)| k.class_names[c].as_str())
        .collect::<Vec<_>>()
        .join("/")
}

/// Test images with distinct components, chosen from the figures' random stream.
fn sample_test_items(run: &Run, n: usize) -> Vec<usize> {
    let mut order = run.test().to_vec();
    order.shuffle(&mut stream(run.ctx.config.seed, Stream::Figures, 0));
    let mut seen = std::collections::HashSet::new();
    let mut picks: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| seen.insert(run.ctx.data.components[i]))
        .take(n)
        .collect();
    let missing = n.saturating_sub(picks.len());
    let rest: Vec<usize> =
        order.iter().copied().filter(|i| !picks.contains(i)).take(missing).collect();
    picks.extend(rest);
    picks
}

/// Caption for a decoded code: the component it is classified as, marked when it is not
/// the `expected` one.
fn classified_caption(run: &Run, model: &AbsAeModel, code: &[f32], expected: usize) -> String {
    // Judge the image the user sees: the decoded code, encoded again.
    let (predicted, _) = model.mixture.classify(&run.encode_pixels(&run.decode(code)));
    let mark = if predicted == expected { "" } else { "✗ " };
    format!("{mark}{}", run.ctx.data.task.component_short_label(predicted))
}

fn cell(pixels: &[f32], caption: Option<String>) -> Option<Cell> {
    Some(Cell { pixels: pixels.to_vec(), caption })
}

/// Test images, reconstructions and each relation applied once: one column per relation for
/// unary relations, one row per example for relations with operands and operator codes.
pub fn relation_grid(run: &Run, model: &AbsAeModel) -> ImageGrid {
    if model.relations().arity() == 1 && !model.relations().operator_coded() {
        unary_relation_grid(run, model)
    } else {
        operand_relation_grid(run, model)
    }
}

/// Input, reconstruction and one column per relation for a few test images.
fn unary_relation_grid(run: &Run, model: &AbsAeModel) -> ImageGrid {
    let items = sample_test_items(run, RELATION_GRID_ROWS);
    let d = model.mixture.dim;
    let codes = run.encode_items(&items);
    let inputs = run.ctx.data.render_batch(&items);
    let reconstructions = run.decode(&codes);
    let len = inputs.len() / items.len().max(1);
    let mut grid = ImageGrid::new("Relations applied once", run.image_shape());
    grid.column_headers = ["input", "reconstruction"]
        .iter()
        .map(|s| s.to_string())
        .chain(model.relations().relations.iter().map(|r| r.name.clone()))
        .collect();
    let mut rng = stream(run.ctx.config.seed, Stream::Figures, 2);
    for (row, &item) in items.iter().enumerate() {
        let truth = run.ctx.data.components[item];
        let code = &codes[row * d..(row + 1) * d];
        grid.row_labels.push(run.ctx.data.task.component_short_label(truth));
        let mut cells = vec![
            cell(&inputs[row * len..(row + 1) * len], None),
            cell(
                &reconstructions[row * len..(row + 1) * len],
                Some(classified_caption(run, model, code, truth)),
            ),
        ];
        for r in 0..model.relations().len() {
            cells.push(model.relations().continue_with(r, truth, &mut rng).map(|application| {
                let moved = model.learner.apply(
                    std::slice::from_ref(&application),
                    code,
                    &mut prior_draw(model),
                    &mut rng,
                );
                Cell {
                    pixels: run.decode(&moved),
                    caption: Some(classified_caption(run, model, &moved, application.outputs[0])),
                }
            }));
        }
        grid.rows.push(cells);
    }
    grid
}

/// Test images, each relation's result and the true counterfactual (the renderer's image of
/// the moved factors with the test image's nuisances); None where the renderer cannot draw one
/// or the relations take further operands.
pub fn counterfactual_grid(run: &Run, model: &AbsAeModel) -> Option<ImageGrid> {
    let (data, relations) = (&run.ctx.data, model.relations());
    if relations.arity() != 1 || relations.operator_coded() {
        return None;
    }
    let items = sample_test_items(run, RELATION_GRID_ROWS);
    let (d, len) = (model.mixture.dim, data.image_len());
    let codes = run.encode_items(&items);
    let inputs = data.render_batch(&items);
    let mut grid = ImageGrid::new("Relations against the true counterfactual", run.image_shape());
    grid.column_headers = std::iter::once("input".to_string())
        .chain(relations.relations.iter().flat_map(|r| [r.name.clone(), "counterfactual".into()]))
        .collect();
    let mut rng = stream(run.ctx.config.seed, Stream::Figures, 3);
    let mut truth_pixels = vec![0.0; len];
    for (row, &item) in items.iter().enumerate() {
        let start = data.components[item];
        let classes = data.dataset.factor_classes(data.indices[item]);
        grid.row_labels.push(data.task.component_short_label(start));
        let mut cells = vec![cell(&inputs[row * len..(row + 1) * len], None)];
        for r in 0..relations.len() {
            let Some(application) = relations.continue_with(r, start, &mut rng) else {
                cells.extend([None, None]);
                continue;
            };
            let code = &codes[row * d..(row + 1) * d];
            let moved = model.learner.apply(
                std::slice::from_ref(&application),
                code,
                &mut prior_draw(model),
                &mut rng,
            );
            let target = data.task.move_to_component(&classes, application.carried());
            if !data.dataset.render_counterfactual(data.indices[item], &target, &mut truth_pixels) {
                return None;
            }
            let decoded = run.decode(&moved);
            let (iou, mse) = crate::eval::relational::pixel_match(&decoded, &truth_pixels);
            let score = if run.image_shape()[0] == 1 {
                format!("IoU {iou:.2}")
            } else {
                format!("MSE {mse:.3}")
            };
            cells.push(cell(
                &decoded,
                Some(format!(
                    "{} · {score}",
                    classified_caption(run, model, &moved, application.carried())
                )),
            ));
            cells.push(cell(
                &truth_pixels,
                Some(data.task.component_short_label(application.carried())),
            ));
        }
        grid.rows.push(cells);
    }
    Some(grid)
}

/// Examples per relation in the operand grid.
const OPERAND_EXAMPLES: usize = 3;

/// For each relation a few examples (paper figures 9 and 10): the encoded test images of the
/// operands and the operator, and the decoded output code(s), classified.
fn operand_relation_grid(run: &Run, model: &AbsAeModel) -> ImageGrid {
    let mut rng = stream(run.ctx.config.seed, Stream::Figures, 2);
    let images = run.test_items_by_component();
    let set = model.relations();
    let mut grid = ImageGrid::new("Relations on encoded test images", run.image_shape());
    grid.column_headers = (0..set.arity()).map(|i| format!("operand {}", i + 1)).collect();
    if set.operator_coded() {
        grid.column_headers.push("operator".into());
    }
    grid.column_headers.extend((0..set.outputs()).map(|o| {
        if set.outputs() == 1 { "result".to_string() } else { format!("result {}", o + 1) }
    }));
    for (r, relation) in set.relations.iter().enumerate() {
        for _ in 0..OPERAND_EXAMPLES {
            let Some(inputs) = relation.valid_inputs().choose(&mut rng).cloned() else { break };
            let application = set.application(r, inputs);
            let mut components = application.inputs.clone();
            components.extend(relation.operator);
            let Some(items) = components
                .iter()
                .map(|&c| images[c].choose(&mut rng).copied())
                .collect::<Option<Vec<usize>>>()
            else {
                continue;
            };
            let d = model.mixture.dim;
            let codes = run.encode_items(&items);
            // The further operands' and the operator's codes, in the order the row takes them.
            let mut further = codes[d..].chunks_exact(d);
            let out = model.learner.apply(
                std::slice::from_ref(&application),
                &codes[..d],
                &mut |_, _| further.next().expect("one code per input").to_vec(),
                &mut rng,
            );
            let shown = run.ctx.data.render_batch(&items);
            let len = shown.len() / items.len();
            let mut cells: Vec<Option<Cell>> = shown
                .chunks_exact(len)
                .zip(&components)
                .map(|(px, &c)| cell(px, Some(run.ctx.data.task.component_short_label(c))))
                .collect();
            for (z, &target) in out.chunks_exact(d).zip(&application.outputs) {
                cells.push(cell(&run.decode(z), Some(classified_caption(run, model, z, target))));
            }
            grid.row_labels.push(relation.name.clone());
            grid.rows.push(cells);
        }
    }
    grid
}

/// Further operands and operator codes of the figures' chains: prior samples.
fn prior_draw<R: rand::Rng>(model: &AbsAeModel) -> impl FnMut(usize, &mut R) -> Vec<f32> + '_ {
    move |c, rng| model.mixture.sample(c, rng)
}

/// One test image moved by each relation repeatedly, then random mixed chains.
pub fn relation_chains(run: &Run, model: &AbsAeModel) -> ImageGrid {
    let start = sample_test_items(run, 1)[0];
    let code = run.encode_items(&[start]);
    let truth = run.ctx.data.components[start];
    let mut grid = ImageGrid::new(
        format!(
            "Relation chains from a test image ({})",
            run.ctx.data.task.component_short_label(truth)
        ),
        run.image_shape(),
    );
    grid.column_headers = (0..=CHAIN_DEPTH)
        .map(|s| if s == 0 { "start".into() } else { format!("step {s}") })
        .collect();
    let mut rng = stream(run.ctx.config.seed, Stream::Figures, 1);
    let set = model.relations();
    for r in 0..set.len() {
        grid.row_labels.push(set.relations[r].name.clone());
        grid.rows.push(chain_cells(
            run,
            model,
            &code,
            truth,
            |c, rng| set.continue_with(r, c, rng),
            true,
            &mut rng,
        ));
    }
    for m in 0..MIXED_CHAINS {
        grid.row_labels.push(format!("mixed {}", m + 1));
        grid.rows.push(chain_cells(
            run,
            model,
            &code,
            truth,
            |c, rng| set.continue_from(c, rng),
            false,
            &mut rng,
        ));
    }
    grid
}

/// Decoded steps of one chain from `code`: `next(component)` picks each step's application
/// (None ends the chain), whose further operands are prior samples; the chain carries the
/// last output. Captions are the classified component (after the step, for steps with further
/// operands), or with `classify == false` the step.
fn chain_cells<R: rand::Rng>(
    run: &Run,
    model: &AbsAeModel,
    code: &[f32],
    truth: usize,
    mut next: impl FnMut(usize, &mut R) -> Option<Application>,
    classify: bool,
    rng: &mut R,
) -> Vec<Option<Cell>> {
    let mut cells =
        vec![cell(&run.decode(code), Some(classified_caption(run, model, code, truth)))];
    let (mut code, mut truth) = (code.to_vec(), truth);
    let d = model.mixture.dim;
    for _ in 1..=CHAIN_DEPTH {
        let Some(application) = next(truth, rng) else { break };
        let out = model.learner.apply(
            std::slice::from_ref(&application),
            &code,
            &mut prior_draw(model),
            rng,
        );
        code = out[out.len() - d..].to_vec();
        truth = application.carried();
        let caption = match (classify, application.inputs.len()) {
            (true, 1) => classified_caption(run, model, &code, truth),
            _ => {
                format!(
                    "{} → {}",
                    step_caption(run, model, &application),
                    classified_caption(run, model, &code, truth)
                )
            }
        };
        cells.push(cell(&run.decode(&code), Some(caption)));
    }
    cells
}

/// A chain step as text: the relation's name, then its further operands (e.g. `sum 3`).
fn step_caption(run: &Run, model: &AbsAeModel, application: &Application) -> String {
    let name = &model.relations().relations[application.relation].name;
    application.inputs[1..].iter().fold(name.clone(), |caption, &c| {
        format!("{caption} {}", run.ctx.data.task.component_short_label(c))
    })
}

fn alpha_series(label: String, rows: impl Iterator<Item = (f64, Option<f64>)>) -> Series {
    Series::new(label, rows.filter_map(|(a, v)| v.map(|v| (a, v))).collect())
}

fn alpha_panel(title: &str, y_label: &str, series: Vec<Series>) -> Panel {
    Panel {
        title: title.into(),
        x_label: "α".into(),
        y_label: y_label.into(),
        series,
        y_range: Some((0.0, 1.02)),
    }
}

/// Accuracy and accepted ratio against α, ours beside the paper's where it has the numbers.
pub fn classification_panels(report: &EvalReport) -> Vec<Panel> {
    let ours = |f: fn(&crate::eval::ClassificationRow) -> Option<f64>, label: String| {
        alpha_series(label, report.classification.iter().map(|r| (r.alpha, f(r))))
    };
    let paper = tasks::paper::for_task(&report.task);
    let paper_rows = |i: usize| {
        ALPHAS.iter().map(move |&a| {
            (
                a,
                paper
                    .and_then(|p| p.classification(report.tau, a))
                    .map(|p| if i == 0 { p.0 } else { p.1 }),
            )
        })
    };
    let mut accuracy = vec![ours(|r| r.accuracy, format!("τ = {}", report.tau))];
    let mut accepted = vec![ours(|r| Some(r.accepted_ratio), format!("τ = {}", report.tau))];
    if paper.and_then(|p| p.classification(report.tau, 0.0)).is_some() {
        accuracy.push(alpha_series(format!("paper, τ = {}", report.tau), paper_rows(0)));
        accepted.push(alpha_series(format!("paper, τ = {}", report.tau), paper_rows(1)));
    }
    vec![
        alpha_panel("Accuracy among accepted codes", "accuracy", accuracy),
        alpha_panel("Accepted ratio", "accepted ratio", accepted),
    ]
}

fn per_depth(
    rows: &[RelationalRow],
    label: &str,
    value: fn(&RelationalRow) -> Option<f64>,
) -> Vec<Series> {
    DEPTHS
        .iter()
        .filter(|&&d| rows.iter().any(|r| r.depth == d))
        .map(|&d| {
            alpha_series(
                format!("{label}depth {d}"),
                rows.iter().filter(|r| r.depth == d).map(|r| (r.alpha, value(r))),
            )
        })
        .collect()
}

/// Relational accuracy from prior samples (with the paper's lines), from test images, and
/// the accepted ratio, each with one line per depth.
pub fn relational_panels(report: &EvalReport) -> Vec<Panel> {
    let mut prior = per_depth(&report.relational, "", |r| r.accuracy);
    if let Some(paper) = tasks::paper::for_task(&report.task) {
        for &d in &DEPTHS {
            prior.push(alpha_series(
                format!("paper, depth {d}"),
                ALPHAS.iter().map(|&a| (a, paper.relational(d, a).map(|p| p.0))),
            ));
        }
    }
    vec![
        alpha_panel("From prior samples", "accuracy", prior),
        alpha_panel(
            "From test images (re-encoded)",
            "accuracy",
            per_depth(&report.relational_images, "", |r| r.accuracy),
        ),
        alpha_panel(
            "Accepted ratio (prior samples)",
            "accepted ratio",
            per_depth(&report.relational, "", |r| Some(r.accepted_ratio)),
        ),
    ]
}

const LOSS_ORDER: [&str; 8] = [
    "recon",
    "adversarial",
    "kl",
    "total_correlation",
    "supervised",
    "consistency",
    "discriminator",
    "relational",
];

/// One panel per logged loss of `metrics.jsonl`, against the step.
pub fn training_panels(metrics: &Path) -> Result<Vec<Panel>> {
    let Ok(text) = std::fs::read_to_string(metrics) else { return Ok(Vec::new()) };
    let mut losses: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| Error::file(metrics, format!("line {}: {e}", n + 1)))?;
        let Some(step) = value["step"].as_f64() else { continue };
        for (key, v) in value.as_object().into_iter().flatten() {
            let (Some(v), false) = (v.as_f64(), ["step", "seconds"].contains(&key.as_str())) else {
                continue;
            };
            match losses.iter_mut().find(|(k, _)| k == key) {
                Some((_, points)) => points.push((step, v)),
                None => losses.push((key.clone(), vec![(step, v)])),
            }
        }
    }
    // The autoencoder's terms first, then the discriminator's and the ReL's.
    let rank = |k: &str| LOSS_ORDER.iter().position(|&o| o == k).unwrap_or(LOSS_ORDER.len());
    losses.sort_by_key(|(k, _)| rank(k));
    Ok(losses
        .into_iter()
        .map(|(key, points)| Panel {
            title: key.replace('_', " "),
            x_label: "step".into(),
            y_label: "loss".into(),
            series: vec![Series::new(String::new(), points)],
            y_range: None,
        })
        .collect())
}

/// The first two principal axes of `codes` (row-major n×d) and their mean.
pub fn principal_axes(codes: &[f32], d: usize) -> (Vec<f64>, [Vec<f64>; 2]) {
    let n = codes.len() / d;
    let x = DMatrix::from_row_iterator(n, d, codes.iter().map(|&v| v as f64));
    let mean: Vec<f64> = (0..d).map(|j| x.column(j).mean()).collect();
    let centred = DMatrix::from_fn(n, d, |i, j| x[(i, j)] - mean[j]);
    let cov = centred.transpose() * &centred / (n.max(2) - 1) as f64;
    let eigen = SymmetricEigen::new(cov);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
    let axis = |k: usize| {
        eigen.eigenvectors.column(order[k.min(d - 1)]).iter().copied().collect::<Vec<f64>>()
    };
    (mean, [axis(0), axis(1)])
}

fn project(z: &[f32], mean: &[f64], axes: &[Vec<f64>; 2]) -> (f64, f64) {
    let dot = |a: &Vec<f64>| {
        z.iter().zip(mean).zip(a).map(|((&v, m), w)| (v as f64 - m) * w).sum::<f64>()
    };
    (dot(&axes[0]), dot(&axes[1]))
}

/// Test codes on their first two principal components, one colour per true component.
pub fn pca_scatter(run: &Run, model: &AbsAeModel) -> Scatter {
    let d = model.mixture.dim;
    let items = sample_test_items(run, PCA_POINTS.min(run.test().len()));
    let codes = run.encode_items(&items);
    let (mean, axes) = principal_axes(&codes, d);
    let mut groups: Vec<Series> = (0..model.mixture.components())
        .map(|c| Series::new(run.ctx.data.task.component_short_label(c), Vec::new()))
        .collect();
    for (z, &item) in codes.chunks_exact(d).zip(&items) {
        groups[run.ctx.data.components[item]].points.push(project(z, &mean, &axes));
    }
    let marks = means_f32(model)
        .chunks_exact(d)
        .enumerate()
        .map(|(c, mu)| (c.to_string(), project(mu, &mean, &axes)))
        .collect();
    Scatter {
        title: "PCA of test codes".into(),
        x_label: "principal component 1".into(),
        y_label: "principal component 2".into(),
        groups,
        marks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_axes_find_the_direction_of_largest_spread() {
        // Points along (1, 1, 0)/√2 with a little spread along z.
        let codes: Vec<f32> = (0..50)
            .flat_map(|i| {
                let t = i as f32 - 25.0;
                [t + 3.0, t + 3.0, 0.1 * (i % 3) as f32]
            })
            .collect();
        let (mean, axes) = principal_axes(&codes, 3);
        assert!((mean[0] - 2.5).abs() < 1e-9 && (mean[1] - 2.5).abs() < 1e-9);
        let a = &axes[0];
        assert!(
            (a[0].abs() - 0.5f64.sqrt()).abs() < 1e-6
                && (a[0] - a[1]).abs() < 1e-6
                && a[2].abs() < 1e-3,
            "{a:?}"
        );
        assert!(axes[1][2].abs() > 0.99, "second axis is z: {:?}", axes[1]);
    }

    #[test]
    fn training_panels_have_one_panel_per_logged_loss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        std::fs::write(&path, "{\"step\":1,\"recon\":3.0,\"relational\":null,\"phase\":\"warmup\",\"seconds\":0.1}\n{\"step\":2,\"recon\":2.0,\"relational\":1.5,\"phase\":\"mixture\",\"seconds\":0.2}\n").unwrap();
        let panels = training_panels(&path).unwrap();
        let titles: Vec<&str> = panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(titles, ["recon", "relational"]);
        assert_eq!(panels[0].series[0].points, vec![(1.0, 3.0), (2.0, 2.0)]);
        assert_eq!(panels[1].series[0].points, vec![(2.0, 1.5)]);
        std::fs::write(&path, "{not json\n").unwrap();
        assert!(training_panels(&path).unwrap_err().to_string().contains("line 1"));
    }
}
