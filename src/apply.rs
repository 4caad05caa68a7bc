//! `relatent apply`: encode a user's image, say where it lands in the latent space, move it
//! with a chain of relations, and decode the result.

use std::path::Path;

use crate::data::ImageShape;
use crate::data::images::{to_dynamic_image, write_atomic};
use crate::eval::TrainedModel;
use crate::eval::relational::apply_relations;
use crate::prior::{AlphaRule, argmax};
use crate::viz::grid::{Cell, ImageGrid};
use crate::{Error, Result};

/// Where a code lands: its most likely component and how confidently.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    pub component: usize,
    /// The component's factor classes, e.g. `shape=heart x=left y=top`.
    pub label: String,
    /// log N(z; μ_k, Σ_k) of that component.
    pub log_density: f64,
    /// Its posterior probability p(k | z).
    pub posterior: f64,
    /// Whether the α rule accepts the code.
    pub accepted: bool,
}

/// One stage of the chain: the relation that led to it (None for the input), where its
/// code lands, and its decoded image.
#[derive(Clone, Debug)]
pub struct Stage {
    pub relation: Option<String>,
    pub placement: Placement,
    pub pixels: Vec<f32>,
}

/// Reads an image file as `C·H·W` floats in [0, 1] in the task's layout (grey or RGB),
/// resizing it if needed; returns a warning when it was resized.
pub fn load_image(path: &Path, shape: ImageShape) -> Result<(Vec<f32>, Option<String>)> {
    let image = image::ImageReader::open(path)
        .map_err(|e| Error::file(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::file(path, e))?
        .decode()
        .map_err(|e| Error::file(path, format!("not a readable image: {e}")))?;
    let [c, h, w] = shape;
    let warning = ((image.width(), image.height()) != (w as u32, h as u32))
        .then(|| format!("{} is {}×{}; resized to the model's {w}×{h}", path.display(), image.width(), image.height()));
    let image = image.resize_exact(w as u32, h as u32, image::imageops::FilterType::Triangle);
    let pixels = if c == 1 {
        image.to_luma32f().into_raw()
    } else {
        let rgb = image.to_rgb32f().into_raw();
        (0..3).flat_map(|k| rgb.iter().skip(k).step_by(3).copied().collect::<Vec<f32>>()).collect()
    };
    Ok((pixels, warning))
}

/// Where `code` lands under `rule` at threshold `alpha`.
pub fn place(model: &TrainedModel, code: &[f32], rule: AlphaRule, alpha: f64) -> Placement {
    let ld = model.mixture.log_densities(code);
    let k = argmax(&ld);
    let max = ld[k];
    let posterior = 1.0 / ld.iter().map(|l| (l - max).exp()).sum::<f64>();
    Placement { component: k, label: model.data.task.component_label(k), log_density: max, posterior, accepted: rule.accepts(&ld, alpha) }
}

/// Encodes `pixels`, then applies the named relations in order. Relations undefined at the
/// component the code is in are still applied (the ReL extrapolates); the caller is told
/// through the placements.
pub fn apply_chain(model: &TrainedModel, pixels: &[f32], relations: &[String], rule: AlphaRule, alpha: f64) -> Result<Vec<Stage>> {
    let ids: Vec<usize> = relations.iter().map(|name| model.relations.position(name)).collect::<Result<_>>()?;
    let mut code = model.encode_pixels(pixels);
    let mut stages = vec![Stage { relation: None, placement: place(model, &code, rule, alpha), pixels: model.decode(&code) }];
    for (&id, name) in ids.iter().zip(relations) {
        code = apply_relations(model, &code, &[id]);
        stages.push(Stage { relation: Some(name.clone()), placement: place(model, &code, rule, alpha), pixels: model.decode(&code) });
    }
    Ok(stages)
}

/// The input and every stage side by side, captioned with relation and component.
pub fn strip(model: &TrainedModel, input: &[f32], stages: &[Stage]) -> ImageGrid {
    let mut grid = ImageGrid::new("relatent apply", model.image_shape());
    grid.column_headers.push("input".into());
    let mut row = vec![Some(Cell { pixels: input.to_vec(), caption: None })];
    for stage in stages {
        grid.column_headers.push(stage.relation.clone().unwrap_or_else(|| "reconstruction".into()));
        let classes = model.data.task.component_classes(stage.placement.component);
        let short: Vec<&str> = model.data.task.kept.iter().zip(classes).map(|(k, c)| k.class_names[c]).collect();
        row.push(Some(Cell { pixels: stage.pixels.clone(), caption: Some(short.join("/")) }));
    }
    grid.rows.push(row);
    grid
}

/// Writes the last stage's image at the model's resolution as a PNG, atomically.
pub fn write_result(model: &TrainedModel, stages: &[Stage], out: &Path) -> Result<()> {
    let last = stages.last().expect("the input stage is always there");
    let mut bytes = Vec::new();
    to_dynamic_image(&last.pixels, model.image_shape())
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| Error::file(out, e))?;
    write_atomic(out, &bytes)
}
