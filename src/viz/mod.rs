//! Seeing what the model learned: image grids, charts, the figures of a run and its report.
//!
//! Everything is drawn into RGB buffers with plotters' bitmap backend and written as PNG by
//! the `image` crate; text uses DejaVu Sans embedded in the binary, so figures look the same
//! on every machine and no system font library is needed.

pub mod charts;
pub mod figures;
pub mod grid;
pub mod report;
pub mod traversals;

use std::path::Path;
use std::sync::Once;

use plotters::style::FontStyle;

use crate::data::images::write_atomic;
use crate::eval::EvalReport;
use crate::inference::Run;
use crate::run_dir::RunDir;
use crate::{Error, Result};

/// Draws the run's figures into `RUN/figures/` and writes `RUN/report.md`: the AbsAE's prior,
/// relations and α curves, or a baseline's latent traversals; training curves for both.
pub fn figures_and_report(
    dir: &RunDir,
    run: &Run,
    eval: &EvalReport,
) -> Result<Vec<figures::Figure>> {
    let figures = match run.model.absae() {
        Some(absae) => figures::write_figures(run, absae, eval, dir)?,
        None => traversals::write_baseline_figures(run, &dir.metrics(), &dir.figures())?,
    };
    write_atomic(&dir.report(), report::markdown(&run.ctx.config, eval, &figures).as_bytes())?;
    Ok(figures)
}

/// The font family every figure uses.
pub const FONT: &str = "sans-serif";

/// Registers the embedded font with plotters (once per process).
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font shipped by the `dejavu` crate.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Writes an RGB buffer (`width`×`height`×3) as a PNG, atomically.
pub fn save_png(rgb: Vec<u8>, width: u32, height: u32, path: &Path) -> Result<()> {
    let image = image::RgbImage::from_raw(width, height, rgb).expect("buffer matches its size");
    let mut bytes = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| Error::file(path, e))?;
    write_atomic(path, &bytes)
}

/// Maps a plotters drawing error to a file error for `path`.
fn drawing_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::file(path, format!("drawing failed: {e}"))
}
