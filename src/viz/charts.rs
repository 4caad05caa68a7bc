//! Line charts in panels (accuracy against α, training curves) and a labelled scatter plot
//! (the PCA of codes).

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{FONT, drawing_error, register_font, save_png};
use crate::Result;

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// A ± error bar on each point's y (e.g. a standard deviation over seeds); empty: none.
    pub y_spread: Vec<f64>,
}

impl Series {
    /// A line without error bars.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series { label: label.into(), points, y_spread: Vec::new() }
    }
}

/// One chart: its axes and lines. `y_range` fixes the y axis (e.g. 0–1 for accuracies).
#[derive(Clone, Debug)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub y_range: Option<(f64, f64)>,
}

/// Points grouped for a scatter plot, with marked points (e.g. component means) on top.
#[derive(Clone, Debug)]
pub struct Scatter {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub groups: Vec<Series>,
    pub marks: Vec<(String, (f64, f64))>,
}

const PANEL_W: u32 = 520;
const PANEL_H: u32 = 380;
const TITLE_H: u32 = 36;
type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// Draws `panels` in a grid of `columns` under a common `title` and writes a PNG.
pub fn save_panels(path: &Path, title: &str, panels: &[Panel], columns: usize) -> Result<()> {
    let columns = columns.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(columns).max(1);
    let (w, h) = (PANEL_W * columns as u32, TITLE_H + PANEL_H * rows as u32);
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    draw_panels(&mut rgb, (w, h), title, panels, (rows, columns))
        .map_err(|e| drawing_error(path, e))?;
    save_png(rgb, w, h, path)
}

fn draw_panels(
    rgb: &mut [u8],
    size: (u32, u32),
    title: &str,
    panels: &[Panel],
    grid: (usize, usize),
) -> DrawResult {
    register_font();
    let root = BitMapBackend::with_buffer(rgb, size).into_drawing_area();
    root.fill(&WHITE)?;
    let (head, body) = root.split_vertically(TITLE_H);
    draw_title(&head, title)?;
    for (area, panel) in body.split_evenly(grid).iter().zip(panels) {
        draw_panel(area, panel)?;
    }
    root.present()?;
    Ok(())
}

fn draw_title(area: &DrawingArea<BitMapBackend<'_>, Shift>, title: &str) -> DrawResult {
    let style = TextStyle::from((FONT, 20).into_font().style(FontStyle::Bold))
        .pos(Pos::new(HPos::Center, VPos::Center));
    let (w, h) = area.dim_in_pixel();
    area.draw_text(title, &style, (w as i32 / 2, h as i32 / 2))?;
    Ok(())
}

/// A tick label: whole numbers without decimals, others with up to two.
fn tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}").trim_end_matches('0').to_string()
    }
}

/// The colour of series `i`.
fn colour(i: usize) -> RGBColor {
    let c = Palette99::pick(i).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

/// (min, max) of `values`, widened by 5% (or to a unit interval when flat or empty).
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.5 };
    (lo - pad, hi + pad)
}

type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A titled chart over the ranges `x` and `y` with labelled axes and tick labels without
/// needless decimals.
fn axes<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    title: &str,
    (x, y): ((f64, f64), (f64, f64)),
    labels: (&str, &str),
) -> std::result::Result<Chart<'a, 'b>, Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)?;
    chart
        .configure_mesh()
        .x_desc(labels.0)
        .y_desc(labels.1)
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .light_line_style(WHITE.mix(0.0))
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()?;
    Ok(chart)
}

fn draw_panel(area: &DrawingArea<BitMapBackend<'_>, Shift>, panel: &Panel) -> DrawResult {
    let points = || panel.series.iter().flat_map(|s| s.points.iter());
    let x = padded_range(points().map(|p| p.0));
    let y = panel.y_range.unwrap_or_else(|| padded_range(points().map(|p| p.1)));
    let mut chart = axes(area, &panel.title, (x, y), (&panel.x_label, &panel.y_label))?;
    for (i, series) in panel.series.iter().enumerate() {
        let c = colour(i);
        let pts: Vec<(f64, f64)> =
            series.points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
            .label(series.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        if pts.len() <= 40 {
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
        }
        let bars = series
            .points
            .iter()
            .zip(&series.y_spread)
            .filter(|((x, y), s)| x.is_finite() && y.is_finite() && s.is_finite() && **s > 0.0);
        chart.draw_series(bars.map(|(&(x, y), &s)| {
            PathElement::new(vec![(x, y - s), (x, y + s)], c.stroke_width(1))
        }))?;
    }
    if panel.series.iter().any(|s| !s.label.is_empty()) {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font((FONT, 12))
            .draw()?;
    }
    Ok(())
}

const SCATTER_PLOT_W: u32 = 640;
const LEGEND_W: u32 = 260;
const SCATTER_H: u32 = 640;
const LEGEND_ROW_H: i32 = 16;

/// Draws a scatter plot with a legend column beside it and writes a PNG.
pub fn save_scatter(path: &Path, scatter: &Scatter) -> Result<()> {
    let (w, h) = (SCATTER_PLOT_W + LEGEND_W, SCATTER_H);
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    draw_scatter(&mut rgb, (w, h), scatter).map_err(|e| drawing_error(path, e))?;
    save_png(rgb, w, h, path)
}

fn draw_scatter(rgb: &mut [u8], size: (u32, u32), scatter: &Scatter) -> DrawResult {
    register_font();
    let root = BitMapBackend::with_buffer(rgb, size).into_drawing_area();
    root.fill(&WHITE)?;
    let (plot, legend) = root.split_horizontally(SCATTER_PLOT_W);
    let points = || {
        scatter
            .groups
            .iter()
            .flat_map(|g| g.points.iter())
            .chain(scatter.marks.iter().map(|m| &m.1))
    };
    let x = padded_range(points().map(|p| p.0));
    let y = padded_range(points().map(|p| p.1));
    let mut chart = axes(&plot, &scatter.title, (x, y), (&scatter.x_label, &scatter.y_label))?;
    for (i, group) in scatter.groups.iter().enumerate() {
        let c = colour(i);
        chart.draw_series(group.points.iter().map(|&p| Circle::new(p, 2, c.mix(0.6).filled())))?;
    }
    let label = TextStyle::from((FONT, 11).into_font()).pos(Pos::new(HPos::Left, VPos::Bottom));
    for (i, (text, p)) in scatter.marks.iter().enumerate() {
        let c = colour(i);
        chart.draw_series(std::iter::once(Cross::new(*p, 6, BLACK.stroke_width(3))))?;
        chart.draw_series(std::iter::once(Cross::new(*p, 5, c.stroke_width(2))))?;
        chart.draw_series(std::iter::once(Text::new(text.clone(), *p, label.clone())))?;
    }
    draw_legend(&legend, &scatter.groups)?;
    root.present()?;
    Ok(())
}

/// One row per group (as many as fit): a colour dot and the group's label.
fn draw_legend(area: &DrawingArea<BitMapBackend<'_>, Shift>, groups: &[Series]) -> DrawResult {
    let style = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let fits = ((area.dim_in_pixel().1 as i32 - 60) / LEGEND_ROW_H).max(0) as usize;
    for (i, group) in groups.iter().enumerate().take(fits) {
        let y = 50 + i as i32 * LEGEND_ROW_H;
        area.draw(&Circle::new((12, y), 5, colour(i).filled()))?;
        area.draw_text(&group.label, &style, (24, y))?;
    }
    if groups.len() > fits {
        area.draw_text(
            &format!("… and {} more", groups.len() - fits),
            &style,
            (24, 50 + fits as i32 * LEGEND_ROW_H),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_and_scatter_are_pngs_of_the_documented_size() {
        let dir = tempfile::tempdir().unwrap();
        let panel = |t: &str| Panel {
            title: t.into(),
            x_label: "α".into(),
            y_label: "accuracy".into(),
            series: vec![Series {
                label: "τ = 10".into(),
                points: vec![(0.0, 0.5), (0.5, 0.7), (0.9, f64::NAN)],
                y_spread: vec![0.05, 0.0, 0.1],
            }],
            y_range: Some((0.0, 1.0)),
        };
        let path = dir.path().join("p.png");
        save_panels(&path, "curves", &[panel("a"), panel("b"), panel("c")], 2).unwrap();
        let img = image::open(&path).unwrap();
        assert_eq!((img.width(), img.height()), (2 * PANEL_W, TITLE_H + 2 * PANEL_H));

        let scatter = Scatter {
            title: "pca".into(),
            x_label: "pc 1".into(),
            y_label: "pc 2".into(),
            groups: vec![Series::new("a", vec![(0.0, 0.0), (1.0, 1.0)])],
            marks: vec![("0".into(), (0.5, 0.5))],
        };
        let path = dir.path().join("s.png");
        save_scatter(&path, &scatter).unwrap();
        let img = image::open(&path).unwrap();
        assert_eq!((img.width(), img.height()), (SCATTER_PLOT_W + LEGEND_W, SCATTER_H));
    }

    #[test]
    fn ranges_ignore_non_finite_values_and_pad() {
        assert_eq!(padded_range([0.0, f64::NAN, 10.0].into_iter()), (-0.5, 10.5));
        assert_eq!(padded_range(std::iter::empty()), (0.0, 1.0));
        assert_eq!(padded_range([2.0].into_iter()), (1.5, 2.5));
    }

    #[test]
    fn ticks_drop_needless_decimals() {
        assert_eq!(tick(200.0), "200");
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(-1.0), "-1");
    }
}
