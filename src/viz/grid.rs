//! Labelled grids of images: a title, column headers, row labels, and a caption under each
//! cell; cells are upscaled (nearest neighbour) so a 45×45 or 64×64 image is easy to see.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{FONT, drawing_error, register_font, save_png};
use crate::Result;
use crate::data::ImageShape;

/// One image of a grid, with an optional caption drawn under it.
#[derive(Clone, Debug)]
pub struct Cell {
    /// `C·H·W` values in [0, 1].
    pub pixels: Vec<f32>,
    pub caption: Option<String>,
}

/// A grid of images, row by row; a `None` cell is left blank.
#[derive(Clone, Debug)]
pub struct ImageGrid {
    pub title: String,
    pub shape: ImageShape,
    pub column_headers: Vec<String>,
    pub row_labels: Vec<String>,
    pub rows: Vec<Vec<Option<Cell>>>,
}

const PAD: u32 = 6;
const TITLE_H: u32 = 30;
const HEADER_H: u32 = 20;
const CAPTION_H: u32 = 16;
const LABEL_CHAR_W: u32 = 8;
/// Cells are upscaled to at least this many pixels on their longer side.
const MIN_CELL: usize = 128;

/// Pixel geometry of a grid.
struct Layout {
    scale: usize,
    cell_w: u32,
    cell_h: u32,
    left: u32,
    top: u32,
    caption_h: u32,
    width: u32,
    height: u32,
}

impl ImageGrid {
    /// An untitled grid of images with no labels.
    pub fn new(title: impl Into<String>, shape: ImageShape) -> ImageGrid {
        ImageGrid {
            title: title.into(),
            shape,
            column_headers: Vec::new(),
            row_labels: Vec::new(),
            rows: Vec::new(),
        }
    }

    fn columns(&self) -> usize {
        self.rows.iter().map(Vec::len).max().unwrap_or(0).max(self.column_headers.len())
    }

    fn layout(&self) -> Layout {
        let [_, h, w] = self.shape;
        let scale = MIN_CELL.div_ceil(h.max(w)).max(1);
        let (cell_w, cell_h) = ((w * scale) as u32, (h * scale) as u32);
        let has_captions = self.rows.iter().flatten().flatten().any(|c| c.caption.is_some());
        let caption_h = if has_captions { CAPTION_H } else { 0 };
        let longest_label =
            self.row_labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u32;
        let left = PAD + if longest_label > 0 { longest_label * LABEL_CHAR_W + PAD } else { 0 };
        let top = TITLE_H + if self.column_headers.is_empty() { 0 } else { HEADER_H };
        let cols = self.columns() as u32;
        let width = (left + cols * (cell_w + PAD) + PAD)
            .max(MIN_TITLE_WIDTH.min(self.title.chars().count() as u32 * LABEL_CHAR_W + 2 * PAD));
        let height = top + self.rows.len() as u32 * (cell_h + caption_h + PAD) + PAD;
        Layout { scale, cell_w, cell_h, left, top, caption_h, width, height }
    }

    /// Cell origin (top-left pixel) of row `r`, column `c`.
    fn origin(layout: &Layout, r: usize, c: usize) -> (u32, u32) {
        (
            layout.left + c as u32 * (layout.cell_w + PAD),
            layout.top + r as u32 * (layout.cell_h + layout.caption_h + PAD),
        )
    }

    /// Draws the grid into an RGB buffer; returns it with its width and height.
    pub fn render(&self, path: &Path) -> Result<(Vec<u8>, u32, u32)> {
        let layout = self.layout();
        let mut rgb = vec![255u8; (layout.width * layout.height * 3) as usize];
        for (r, row) in self.rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                if let Some(cell) = cell {
                    self.blit(&mut rgb, &layout, Self::origin(&layout, r, c), &cell.pixels);
                }
            }
        }
        self.draw_text(&mut rgb, &layout).map_err(|e| drawing_error(path, e))?;
        Ok((rgb, layout.width, layout.height))
    }

    /// Renders the grid and writes it as a PNG.
    pub fn save(&self, path: &Path) -> Result<()> {
        let (rgb, w, h) = self.render(path)?;
        save_png(rgb, w, h, path)
    }

    /// Copies one image, upscaled, into the buffer at `origin`, with a thin grey frame.
    fn blit(&self, rgb: &mut [u8], layout: &Layout, origin: (u32, u32), pixels: &[f32]) {
        let [channels, h, w] = self.shape;
        let stride = layout.width as usize;
        let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        for py in 0..layout.cell_h as usize {
            for px in 0..layout.cell_w as usize {
                let (sy, sx) = (py / layout.scale, px / layout.scale);
                let at = ((origin.1 as usize + py) * stride + origin.0 as usize + px) * 3;
                for k in 0..3 {
                    let channel = if channels == 1 { 0 } else { k };
                    rgb[at + k] = byte(pixels[channel * h * w + sy * w + sx]);
                }
            }
        }
        self.frame(rgb, layout, origin);
    }

    fn frame(&self, rgb: &mut [u8], layout: &Layout, (x0, y0): (u32, u32)) {
        let stride = layout.width as usize;
        let mut grey = |x: u32, y: u32| {
            if x < layout.width && y < layout.height {
                let at = (y as usize * stride + x as usize) * 3;
                rgb[at..at + 3].copy_from_slice(&[160, 160, 160]);
            }
        };
        for x in x0.saturating_sub(1)..=x0 + layout.cell_w {
            grey(x, y0.saturating_sub(1));
            grey(x, y0 + layout.cell_h);
        }
        for y in y0.saturating_sub(1)..=y0 + layout.cell_h {
            grey(x0.saturating_sub(1), y);
            grey(x0 + layout.cell_w, y);
        }
    }

    fn draw_text(
        &self,
        rgb: &mut [u8],
        layout: &Layout,
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        register_font();
        let root =
            BitMapBackend::with_buffer(rgb, (layout.width, layout.height)).into_drawing_area();
        let title = TextStyle::from((FONT, 18).into_font().style(FontStyle::Bold))
            .pos(Pos::new(HPos::Left, VPos::Center));
        root.draw_text(&self.title, &title, (PAD as i32, (TITLE_H / 2) as i32))?;
        let centred =
            TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
        for (c, header) in self.column_headers.iter().enumerate() {
            let (x, _) = Self::origin(layout, 0, c);
            root.draw_text(
                header,
                &centred,
                ((x + layout.cell_w / 2) as i32, (TITLE_H + HEADER_H / 2) as i32),
            )?;
        }
        let label = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        for (r, text) in self.row_labels.iter().enumerate() {
            let (_, y) = Self::origin(layout, r, 0);
            root.draw_text(text, &label, (PAD as i32, (y + layout.cell_h / 2) as i32))?;
        }
        let caption =
            TextStyle::from((FONT, 11).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
        for (r, row) in self.rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                if let Some(text) = cell.as_ref().and_then(|cell| cell.caption.as_ref()) {
                    let (x, y) = Self::origin(layout, r, c);
                    root.draw_text(
                        text,
                        &caption,
                        (
                            (x + layout.cell_w / 2) as i32,
                            (y + layout.cell_h + CAPTION_H / 2 + 1) as i32,
                        ),
                    )?;
                }
            }
        }
        root.present()?;
        Ok(())
    }
}

/// A title is never clipped below this width.
const MIN_TITLE_WIDTH: u32 = 640;

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(rows: usize, cols: usize, caption: bool) -> ImageGrid {
        let cell = |v: f32| {
            Some(Cell { pixels: vec![v; 45 * 45], caption: caption.then(|| "shape=1".to_string()) })
        };
        ImageGrid {
            title: "test grid".into(),
            shape: [1, 45, 45],
            column_headers: (0..cols).map(|c| format!("c{c}")).collect(),
            row_labels: (0..rows).map(|r| format!("row {r}")).collect(),
            rows: (0..rows)
                .map(|r| (0..cols).map(|c| cell(((r + c) % 2) as f32)).collect())
                .collect(),
        }
    }

    #[test]
    fn cells_are_upscaled_and_placed_where_the_layout_says() {
        let g = grid(2, 3, true);
        let layout = g.layout();
        assert_eq!(layout.scale, 3, "45 px cells become 135 px");
        let (rgb, w, h) = g.render(Path::new("grid.png")).unwrap();
        assert_eq!((w, h), (layout.width, layout.height));
        assert_eq!(h, TITLE_H + HEADER_H + 2 * (135 + CAPTION_H + PAD) + PAD);
        // The centre of cell (0, 1) is white (value 1), of cell (1, 1) black (value 0).
        let px = |x: u32, y: u32| rgb[((y * w + x) * 3) as usize];
        let (x, y) = ImageGrid::origin(&layout, 0, 1);
        assert_eq!(px(x + 67, y + 67), 255);
        let (x, y) = ImageGrid::origin(&layout, 1, 1);
        assert_eq!(px(x + 67, y + 67), 0);
    }

    #[test]
    fn saved_grid_is_a_png_of_the_rendered_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.png");
        let g = grid(3, 2, false);
        g.save(&path).unwrap();
        let img = image::open(&path).unwrap();
        let layout = g.layout();
        assert_eq!((img.width(), img.height()), (layout.width, layout.height));
        // Text was drawn: the title row is not blank.
        let rgb = img.to_rgb8();
        assert!((0..layout.width).any(|x| rgb.get_pixel(x, TITLE_H / 2)[0] < 128), "title drawn");
    }
}
