//! `relatent apply`: encode a user's image, say where it lands in the latent space, move it
//! with a chain of relations, and decode the result.

use std::path::Path;

use super::learner::relation_row;
use crate::data::ImageShape;
use crate::data::images::{model_bytes, open_image, png_bytes, write_atomic};
use crate::eval::ood::{self, OodReference};
use crate::eval::probe::NuisanceProbe;
use crate::inference::{AbsAeModel, Placement, Run};
use crate::prior::AlphaRule;
use crate::viz::grid::{Cell, ImageGrid};
use crate::{Error, Result};

/// One stage of the chain: the relation that led to it (None for the input), where its
/// code lands, its decoded image, where that image lands when encoded again (what the user
/// sees), and the nuisances the probe reads in it.
#[derive(Clone, Debug)]
pub struct Stage {
    pub relation: Option<String>,
    pub placement: Placement,
    pub pixels: Vec<f32>,
    pub seen: Placement,
    pub nuisances: Vec<NuisanceReading>,
}

/// A nuisance factor as the probe reads it in a stage's decoded image, and whether that is how
/// it reads the input image.
#[derive(Clone, Debug, PartialEq)]
pub struct NuisanceReading {
    pub factor: String,
    pub class: usize,
    pub kept: bool,
}

/// What a chain's stages are judged with: the α rule and threshold, and the nuisance probe
/// (None where the task has no nuisance the labelled images vary in).
struct Judge<'a> {
    run: &'a Run,
    model: &'a AbsAeModel,
    rule: AlphaRule,
    alpha: f64,
    probe: Option<NuisanceProbe>,
    /// The probe's reading of the input image's code.
    input_nuisances: Vec<usize>,
}

impl Judge<'_> {
    /// The stage of `code`, reached by `relation`.
    fn stage(&self, relation: Option<String>, code: &[f32]) -> Stage {
        let pixels = self.run.decode(code);
        let seen_code = self.run.encode_pixels(&pixels);
        let nuisances = self.probe.as_ref().map_or_else(Vec::new, |probe| {
            let read = probe.read(&seen_code).remove(0);
            let names = &self.run.ctx.data.task.factor_names;
            probe
                .factors
                .iter()
                .zip(read)
                .zip(&self.input_nuisances)
                .map(|((&f, class), &input)| NuisanceReading {
                    factor: names[f].clone(),
                    class,
                    kept: class == input,
                })
                .collect()
        });
        Stage {
            relation,
            placement: self.model.place(code, self.rule, self.alpha),
            seen: self.model.place(&seen_code, self.rule, self.alpha),
            pixels,
            nuisances,
        }
    }
}

/// Reads an image file as `C·H·W` floats in [0, 1] in the task's layout (grey or RGB),
/// resized as folder datasets are; returns a warning when it was resized.
pub fn load_image(path: &Path, shape: ImageShape) -> Result<(Vec<f32>, Option<String>)> {
    let image = open_image(path)?;
    let [_, h, w] = shape;
    let warning = ((image.width(), image.height()) != (w as u32, h as u32)).then(|| {
        format!(
            "{} is {}×{}; resized to the model's {w}×{h}",
            path.display(),
            image.width(),
            image.height()
        )
    });
    let pixels = model_bytes(&image, shape).into_iter().map(|b| b as f32 / 255.0).collect();
    Ok((pixels, warning))
}

/// Images a chain's steps take besides the chain's own code, consumed in order: the further
/// operands of relations with several inputs, and the operators' images of relations selected
/// by an operator (when none are given, the operator component's prior mean stands in).
#[derive(Clone, Debug, Default)]
pub struct StepImages {
    pub operands: Vec<Vec<f32>>,
    pub operators: Vec<Vec<f32>>,
}

/// Encodes `pixels`, then applies the named relations in order, each output code a stage (the
/// chain carries the last output on). Relations undefined at the component the code is in are
/// still applied (the ReL extrapolates); the caller is told through the placements.
pub fn apply_chain(
    run: &Run,
    pixels: &[f32],
    relations: &[String],
    images: &StepImages,
    rule: AlphaRule,
    alpha: f64,
) -> Result<Vec<Stage>> {
    let model = run.absae()?;
    let ids: Vec<usize> =
        relations.iter().map(|name| model.relations().position(name)).collect::<Result<_>>()?;
    check_step_images(model, &ids, images)?;
    let mut operands = images.operands.iter().map(|px| run.encode_pixels(px));
    let mut operators = images.operators.iter().map(|px| run.encode_pixels(px));
    let mut code = run.encode_pixels(pixels);
    let probe = NuisanceProbe::fit(run);
    let input_nuisances = probe.as_ref().map_or_else(Vec::new, |p| p.read(&code).remove(0));
    let judge = Judge { run, model, rule, alpha, probe, input_nuisances };
    let mut stages = vec![judge.stage(None, &code)];
    let d = model.mixture.dim;
    for (&id, name) in ids.iter().zip(relations) {
        let relation = &model.relations().relations[id];
        let mut inputs = code.clone();
        inputs.extend((1..relation.arity).flat_map(|_| operands.next().expect("counted")));
        let operator = relation.operator.map(|op| {
            operators
                .next()
                .unwrap_or_else(|| model.mixture.means[op].iter().map(|&v| v as f32).collect())
        });
        let mut row = Vec::new();
        relation_row(model.relations(), id, &inputs, operator.as_deref(), &mut row);
        let out = model.learner.apply_rows(&row);
        for (o, z) in out.chunks_exact(d).enumerate() {
            let label = if relation.outputs == 1 {
                name.clone()
            } else {
                format!("{name} [{}/{}]", o + 1, relation.outputs)
            };
            stages.push(judge.stage(Some(label), z));
        }
        code = out[out.len() - d..].to_vec();
    }
    Ok(stages)
}

/// The chain of relations `ids` needs exactly as many operand images as its further inputs, and
/// operator images for all of its operator-selected steps or for none.
fn check_step_images(model: &AbsAeModel, ids: &[usize], images: &StepImages) -> Result<()> {
    let relations = ids.iter().map(|&id| &model.relations().relations[id]);
    let operands: usize = relations.clone().map(|r| r.arity - 1).sum();
    let operators = relations.filter(|r| r.operator.is_some()).count();
    if images.operands.len() != operands {
        return Err(Error::Invalid(format!(
            "the relations given take {operands} further operand image(s) (--operand), got {}",
            images.operands.len()
        )));
    }
    if !images.operators.is_empty() && images.operators.len() != operators {
        return Err(Error::Invalid(format!(
            "the relations given take {operators} operator image(s) (--operator) or none, got {}",
            images.operators.len()
        )));
    }
    Ok(())
}

/// How unlike the training data an input image is, read against the test split's scores.
pub fn ood_line(
    run: &Run,
    pixels: &[f32],
    rule: AlphaRule,
    reference: Option<&OodReference>,
) -> Result<String> {
    let Some(reference) = reference else {
        return Ok("OOD score: no reference yet (run `relatent eval` on the run first)".into());
    };
    let score = ood::score_pixels(run, run.absae()?, rule, pixels, reference).chosen()[0];
    let verdict = if score > reference.p99 {
        "beyond the test split's 99th percentile: likely unlike the training data"
    } else if score > reference.p95 {
        "beyond the test split's 95th percentile"
    } else {
        "within the test split's range"
    };
    Ok(format!(
        "OOD score {score:.3} ({} score; test split p95 {:.3}, p99 {:.3}): {verdict}",
        reference.score, reference.p95, reference.p99
    ))
}

/// The input and every stage side by side, captioned with relation and component.
pub fn strip(run: &Run, input: &[f32], stages: &[Stage]) -> ImageGrid {
    let task = &run.ctx.data.task;
    let mut grid = ImageGrid::new("relatent apply", run.image_shape());
    grid.column_headers.push("input".into());
    let mut row = vec![Some(Cell { pixels: input.to_vec(), caption: None })];
    for stage in stages {
        grid.column_headers.push(stage.relation.clone().unwrap_or_else(|| "reconstruction".into()));
        // The image's own reading, as the figures caption theirs, marked where it is not the
        // component the code is in.
        let seen = task.component_short_label(stage.seen.component);
        let mark = if stage.seen.component == stage.placement.component { "" } else { "✗ " };
        let caption = format!("{mark}{seen}");
        row.push(Some(Cell { pixels: stage.pixels.clone(), caption: Some(caption) }));
    }
    grid.rows.push(row);
    grid
}

/// Writes the last stage's image at the model's resolution as a PNG, atomically.
pub fn write_result(run: &Run, stages: &[Stage], out: &Path) -> Result<()> {
    let last = stages.last().expect("the input stage is always there");
    write_atomic(out, &png_bytes(&last.pixels, run.image_shape()))
}
