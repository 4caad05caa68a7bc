//! Factor datasets, splits and augmentation.
//!
//! A [`FactorDataset`] is a set of images with integer labels for named generative factors,
//! rendered on demand (procedural renderers) or read from an official file. Which factors a
//! run keeps, and so its components, is the task's business ([`crate::tasks`]).

use std::borrow::Cow;

pub mod augment;
pub mod dsprites;
pub mod folder;
pub mod hwf;
pub mod hwf_files;
pub mod images;
pub mod inspect;
pub mod npz;
pub mod room_colours;
pub mod shapes3d;
pub mod shapes3d_h5;
pub mod split;

pub use split::Split;

/// One named generative factor and how many values it takes.
#[derive(Clone, Debug, PartialEq)]
pub struct Factor {
    pub name: Cow<'static, str>,
    pub size: usize,
}

impl Factor {
    /// A factor with a name known at compile time (the built-in datasets').
    pub const fn new(name: &'static str, size: usize) -> Factor {
        Factor { name: Cow::Borrowed(name), size }
    }
}

/// Factor classes of image `index` of a full factor grid in label order, the last factor
/// fastest (the official files' order).
pub fn grid_classes_of(factors: &[Factor], mut index: usize) -> Vec<usize> {
    let mut classes = vec![0; factors.len()];
    for (slot, f) in classes.iter_mut().zip(factors).rev() {
        *slot = index % f.size;
        index /= f.size;
    }
    classes
}

/// Index in a full factor grid (label order, the last factor fastest) of these classes.
pub fn grid_index_of(factors: &[Factor], classes: &[usize]) -> usize {
    classes.iter().zip(factors).fold(0, |acc, (c, f)| acc * f.size + c)
}

/// Image layout: channels, height, width.
pub type ImageShape = [usize; 3];

/// The five questions every dataset answers (as in disentanglement_lib), so that tasks,
/// training and evaluation never know which source they read.
pub trait FactorDataset: Send + Sync {
    /// Source name, e.g. `dsprites (procedural)`.
    fn describe(&self) -> String;
    /// The generative factors, in label order.
    fn factors(&self) -> &[Factor];
    /// Channels, height, width of one image.
    fn image_shape(&self) -> ImageShape;
    /// Number of images.
    fn len(&self) -> usize;
    /// Whether the dataset holds no images.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Factor classes of image `index`.
    fn factor_classes(&self, index: usize) -> Vec<usize>;
    /// Writes image `index` as `C·H·W` floats in [0, 1] into `out`.
    fn render(&self, index: usize, out: &mut [f32]);

    /// Renders image `index` with its factor classes changed to `classes` and everything
    /// else the same (a renderer's counterfactual: HWF keeps the writer's hand); false where
    /// the dataset cannot (files hold only the images they hold).
    fn render_counterfactual(&self, _index: usize, _classes: &[usize], _out: &mut [f32]) -> bool {
        false
    }

    /// The first image this dataset could not read since it was opened (a file that changed
    /// or broke under a run: [`FactorDataset::render`] has drawn it black). Training and
    /// evaluation stop on it rather than learn or report from images that were never read.
    fn read_error(&self) -> Option<crate::Error> {
        None
    }

    /// The file image `index` was read from, for datasets of files.
    fn file_name(&self, _index: usize) -> Option<String> {
        None
    }

    /// Floats in one image.
    fn image_len(&self) -> usize {
        let [c, h, w] = self.image_shape();
        c * h * w
    }
}
