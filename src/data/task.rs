//! Tasks: which factors are kept (as classes or bands of values), which images are in the
//! task, and the components of the mixture prior.

use std::sync::Arc;

use super::dsprites::{self, DspritesNpz, DspritesRenderer};
use super::hwf::{self, HwfRenderer};
use super::hwf_files::HwfFiles;
use super::shapes3d::{self, Shapes3dRenderer};
use super::shapes3d_h5::Shapes3dH5;
use super::{FactorDataset, ImageShape};
use crate::relations::RelationSpec;
use crate::{Error, Result};

/// Names of the built-in tasks.
pub const TASKS: [&str; 4] = ["dsprites", "dsprites-full", "shapes3d", "hwf"];

/// A factor the task keeps: its values are grouped into classes.
#[derive(Clone, Debug)]
pub struct KeptFactor {
    /// Name of the kept factor as shown to users (e.g. `x`).
    pub name: &'static str,
    /// Index of the dataset factor it reads.
    pub factor: usize,
    /// Class of each factor value.
    pub class_of: Vec<usize>,
    /// Names of the classes.
    pub class_names: Vec<&'static str>,
}

impl KeptFactor {
    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.class_names.len()
    }
}

/// Component-preserving augmentation of a task's images (default mode): of the labelled images
/// of the supervised term, and the strong views of the consistency term.
#[derive(Clone, Debug)]
pub enum Augmentation {
    /// dSprites: rotation and scale about the ink centroid; labelled images also move to a
    /// random place inside their position bands.
    Sprite(GeometricAugment),
    /// HWF: rotation by up to `max_rotation` radians and a scale in `scale` about the ink
    /// centroid, and a shift of up to `max_shift` pixels, which keep the symbol.
    Handwriting { max_rotation: f64, scale: (f64, f64), max_shift: f64 },
    /// Shapes3D: floor and walls repainted in other palette hues, the object untouched.
    RoomColours,
}

/// The sprite augmentation's ranges (dSprites).
#[derive(Clone, Debug)]
pub struct GeometricAugment {
    /// Largest rotation either way, radians.
    pub max_rotation: f64,
    /// Range of the scale multiplier.
    pub scale: (f64, f64),
    /// For each x class, the pixel range its sprite centres span.
    pub x_bands: Vec<(f64, f64)>,
    /// For each y class, likewise.
    pub y_bands: Vec<(f64, f64)>,
    /// Kept-factor positions of the x and y bands in a component's classes.
    pub band_factors: (usize, usize),
}

/// A task: the dataset it reads, the kept factors and the nuisance subset.
#[derive(Clone, Debug)]
pub struct Task {
    pub name: String,
    pub kept: Vec<KeptFactor>,
    /// For each dataset factor, the classes an image may have to be in the task (None = all).
    pub nuisance_subset: Vec<Option<Vec<usize>>>,
    /// The task's built-in relations, trained when a run names none.
    pub relations: Vec<RelationSpec>,
    /// Relations offered by name only: they need a differently shaped ReL than the defaults.
    pub relation_variants: Vec<RelationSpec>,
    pub augment: Option<Augmentation>,
}

impl Task {
    /// The built-in task `name`.
    pub fn by_name(name: &str) -> Result<Task> {
        match name {
            "dsprites" => Ok(dsprites_task(name, true)),
            "dsprites-full" => Ok(dsprites_task(name, false)),
            "shapes3d" => Ok(shapes3d_task()),
            "hwf" => Ok(hwf_task()),
            other => {
                Err(Error::Unknown(format!("unknown task '{other}' (known: {})", TASKS.join(", "))))
            }
        }
    }

    /// Number of mixture components (combinations of kept classes).
    pub fn components(&self) -> usize {
        self.kept.iter().map(KeptFactor::classes).product()
    }

    /// Whether an image with these factor classes belongs to the task.
    pub fn contains(&self, classes: &[usize]) -> bool {
        self.nuisance_subset
            .iter()
            .zip(classes)
            .all(|(allowed, c)| allowed.as_ref().is_none_or(|a| a.contains(c)))
    }

    /// Component of an image with these factor classes (mixed radix, first kept factor slowest).
    pub fn component_of(&self, classes: &[usize]) -> usize {
        self.kept.iter().fold(0, |acc, k| acc * k.classes() + k.class_of[classes[k.factor]])
    }

    /// Kept-factor classes of component `c`.
    pub fn component_classes(&self, mut c: usize) -> Vec<usize> {
        let mut out = vec![0; self.kept.len()];
        for (slot, k) in out.iter_mut().zip(&self.kept).rev() {
            *slot = c % k.classes();
            c /= k.classes();
        }
        out
    }

    /// Component with these kept-factor classes.
    pub fn component_from_classes(&self, classes: &[usize]) -> usize {
        self.kept.iter().zip(classes).fold(0, |acc, (k, &c)| acc * k.classes() + c)
    }

    /// Human-readable label of component `c`, e.g. `shape=heart x=left y=top`.
    pub fn component_label(&self, c: usize) -> String {
        let classes = self.component_classes(c);
        self.kept
            .iter()
            .zip(classes)
            .map(|(k, c)| format!("{}={}", k.name, k.class_names[c]))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The dataset this task reads: the procedural renderer, or the official file at `data`.
    pub fn open_dataset(&self, data: Option<&std::path::Path>) -> Result<Arc<dyn FactorDataset>> {
        Ok(match (self.name.as_str(), data) {
            ("shapes3d", None) => Arc::new(Shapes3dRenderer),
            ("shapes3d", Some(path)) => {
                Arc::new(Shapes3dH5::open(path, |classes| self.contains(classes), None)?)
            }
            ("hwf", None) => Arc::new(HwfRenderer),
            ("hwf", Some(path)) => Arc::new(HwfFiles::open(path)?),
            (_, None) => Arc::new(DspritesRenderer),
            (_, Some(path)) => {
                Arc::new(DspritesNpz::open(path, |classes| self.contains(classes), None)?)
            }
        })
    }
}

/// Positions 0–31 in three bands of 11/10/11.
fn position_bands() -> Vec<usize> {
    (0..32)
        .map(|p| {
            if p < 11 {
                0
            } else if p < 21 {
                1
            } else {
                2
            }
        })
        .collect()
}

fn dsprites_task(name: &str, authors_subset: bool) -> Task {
    use crate::relations::RelationSpec as R;
    let subset = if authors_subset {
        // The authors' code keeps scale indices 2–4 and orientations near 0.
        vec![None, Some(vec![2, 3, 4]), Some(vec![0, 1, 2, 37, 38, 39]), None, None]
    } else {
        vec![None; 5]
    };
    let kept = vec![
        KeptFactor {
            name: "shape",
            factor: 0,
            class_of: vec![0, 1, 2],
            class_names: dsprites::SHAPES.to_vec(),
        },
        KeptFactor {
            name: "x",
            factor: 3,
            class_of: position_bands(),
            class_names: vec!["left", "center", "right"],
        },
        KeptFactor {
            name: "y",
            factor: 4,
            class_of: position_bands(),
            class_names: vec!["top", "middle", "bottom"],
        },
    ];
    let band_pixels = |lo: f64, hi: f64| (10.0 + 44.0 * lo / 31.0, 10.0 + 44.0 * hi / 31.0);
    let bands = vec![band_pixels(0.0, 10.0), band_pixels(11.0, 20.0), band_pixels(21.0, 31.0)];
    Task {
        name: name.to_string(),
        kept,
        nuisance_subset: subset,
        relations: vec![
            R::shift("move_left", 1, -1, true),
            R::shift("move_right", 1, 1, true),
            R::shift("move_up", 2, -1, true),
            R::shift("move_down", 2, 1, true),
            R::shift("change_shape", 0, 1, true),
        ],
        relation_variants: Vec::new(),
        augment: Some(Augmentation::Sprite(GeometricAugment {
            max_rotation: if authors_subset { 0.5 } else { std::f64::consts::PI },
            scale: if authors_subset { (0.85, 1.15) } else { (0.75, 1.25) },
            x_bands: bands.clone(),
            y_bands: bands,
            band_factors: (1, 2),
        })),
    }
}

/// Object hue × shape × scale (3 of the 8 scales: small, medium, big) = 120 components; floor
/// and wall hue and orientation are nuisances.
fn shapes3d_task() -> Task {
    use crate::relations::RelationSpec as R;
    const KEPT_SCALES: [usize; 3] = [0, 4, 7];
    let scale_class =
        (0..8).map(|s| KEPT_SCALES.iter().position(|&k| k == s).unwrap_or(0)).collect();
    Task {
        name: "shapes3d".into(),
        kept: vec![
            KeptFactor {
                name: "hue",
                factor: 2,
                class_of: (0..10).collect(),
                class_names: vec![
                    "red", "orange", "yellow", "lime", "green", "cyan", "azure", "blue", "purple",
                    "magenta",
                ],
            },
            KeptFactor {
                name: "shape",
                factor: 4,
                class_of: (0..4).collect(),
                class_names: shapes3d::SHAPES.to_vec(),
            },
            KeptFactor {
                name: "scale",
                factor: 3,
                class_of: scale_class,
                class_names: vec!["small", "medium", "big"],
            },
        ],
        nuisance_subset: vec![None, None, None, Some(KEPT_SCALES.to_vec()), None, None],
        relations: vec![
            R::shift("hue_up", 0, 1, false),
            R::shift("hue_down", 0, -1, false),
            R::shift("scale_up", 2, 1, false),
            R::shift("scale_down", 2, -1, false),
            R::shift("change_shape", 1, 1, true),
        ],
        relation_variants: Vec::new(),
        // Views that move the picture (mirrored and shifted, or panned by 2 pixels) were
        // measured to hurt, shape and scale most; repainting the room changes only nuisances.
        augment: Some(Augmentation::RoomColours),
    }
}

/// The 13 symbols, one component each (digit d is component d, then `+`, `-`, `×`); the
/// writer's style is the nuisance. Relations are binary arithmetic mod 10, the operator's
/// code telling the ReL which; the two-output variants write the result in full (paper
/// figure 10).
fn hwf_task() -> Task {
    use crate::relations::{Operation, ResultForm};
    const PLUS: usize = 10;
    const MINUS: usize = 11;
    const TIMES: usize = 12;
    let arithmetic = |name: &str, operation, form, operator| RelationSpec::Arithmetic {
        name: name.into(),
        operation,
        form,
        operator,
        signs: (PLUS, MINUS),
    };
    Task {
        name: "hwf".into(),
        kept: vec![KeptFactor {
            name: "symbol",
            factor: 0,
            class_of: (0..13).collect(),
            class_names: hwf::SYMBOLS.to_vec(),
        }],
        nuisance_subset: vec![None, None],
        relations: vec![
            arithmetic("sum", Operation::Add, ResultForm::Mod10, PLUS),
            arithmetic("sub", Operation::Sub, ResultForm::Mod10, MINUS),
            arithmetic("mul", Operation::Mul, ResultForm::Mod10, TIMES),
        ],
        relation_variants: vec![
            arithmetic("sub_sign_magnitude", Operation::Sub, ResultForm::SignMagnitude, MINUS),
            arithmetic("sum_tens_units", Operation::Add, ResultForm::TensUnits, PLUS),
            arithmetic("mul_tens_units", Operation::Mul, ResultForm::TensUnits, TIMES),
        ],
        augment: Some(Augmentation::Handwriting {
            max_rotation: 0.2,
            scale: (0.85, 1.15),
            max_shift: 3.0,
        }),
    }
}

/// A task bound to a dataset: the images in the task and their components.
pub struct TaskData {
    pub task: Task,
    pub dataset: Arc<dyn FactorDataset>,
    /// Dataset indices of the task's images.
    pub indices: Vec<usize>,
    /// Component of each of those images.
    pub components: Vec<usize>,
}

impl TaskData {
    /// Selects the task's images from `dataset`.
    pub fn new(task: Task, dataset: Arc<dyn FactorDataset>) -> Result<TaskData> {
        let mut indices = Vec::new();
        let mut components = Vec::new();
        for i in 0..dataset.len() {
            let classes = dataset.factor_classes(i);
            if task.contains(&classes) {
                indices.push(i);
                components.push(task.component_of(&classes));
            }
        }
        if indices.is_empty() {
            return Err(Error::Invalid(format!(
                "{} holds no image of task '{}'",
                dataset.describe(),
                task.name
            )));
        }
        Ok(TaskData { task, dataset, indices, components })
    }

    /// Opens the task `name` on the renderer or the file at `data`.
    pub fn open(name: &str, data: Option<&std::path::Path>) -> Result<TaskData> {
        let task = Task::by_name(name)?;
        let dataset = task.open_dataset(data)?;
        TaskData::new(task, dataset)
    }

    /// Number of images in the task.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the task holds no images.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Image layout.
    pub fn image_shape(&self) -> ImageShape {
        self.dataset.image_shape()
    }

    /// Renders the task's images `items` (positions in [`Self::indices`]) into one buffer,
    /// images in parallel (each is independent, so the result does not depend on the threads).
    pub fn render_batch(&self, items: &[usize]) -> Vec<f32> {
        use rayon::prelude::*;
        let n = self.dataset.image_len();
        let mut out = vec![0.0; items.len() * n];
        out.par_chunks_exact_mut(n)
            .zip(items.par_iter())
            .for_each(|(chunk, &item)| self.dataset.render(self.indices[item], chunk));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsprites_subsets_have_the_documented_sizes() {
        let small = TaskData::open("dsprites", None).unwrap();
        assert_eq!(small.len(), 55_296);
        assert_eq!(small.task.components(), 27);
        let full = Task::by_name("dsprites-full").unwrap();
        assert!(full.contains(&[0, 0, 20, 0, 0]));
        assert!(!small.task.contains(&[0, 0, 20, 0, 0]));
    }

    #[test]
    fn components_round_trip_and_use_bands() {
        let t = Task::by_name("dsprites").unwrap();
        for c in 0..27 {
            assert_eq!(t.component_from_classes(&t.component_classes(c)), c);
        }
        assert_eq!(t.component_of(&[2, 0, 0, 10, 11]), t.component_from_classes(&[2, 0, 1]));
        assert_eq!(t.component_of(&[1, 0, 0, 21, 31]), t.component_from_classes(&[1, 2, 2]));
        assert_eq!(
            t.component_label(t.component_from_classes(&[2, 0, 2])),
            "shape=heart x=left y=bottom"
        );
    }

    #[test]
    fn shapes3d_task_keeps_three_scales_and_saturates_its_relations() {
        let data = TaskData::open("shapes3d", None).unwrap();
        assert_eq!(data.task.components(), 120);
        assert_eq!(data.len(), 480_000 / 8 * 3);
        let t = &data.task;
        assert_eq!(
            t.component_label(t.component_of(&[0, 0, 9, 7, 3, 0])),
            "hue=magenta shape=capsule scale=big"
        );
        let relations = crate::relations::RelationSet::for_task(t, &[]).unwrap();
        let apply = |name: &str, classes: [usize; 3]| {
            let r = &relations.relations[relations.position(name).unwrap()];
            r.apply(&[t.component_from_classes(&classes)]).map(|c| t.component_classes(c[0]))
        };
        assert_eq!(apply("hue_up", [3, 1, 1]), Some(vec![4, 1, 1]));
        assert_eq!(apply("hue_up", [9, 1, 1]), None, "hue saturates");
        assert_eq!(apply("scale_down", [3, 1, 0]), None, "scale saturates");
        assert_eq!(apply("scale_down", [3, 1, 2]), Some(vec![3, 1, 1]));
        assert_eq!(apply("change_shape", [3, 3, 2]), Some(vec![3, 0, 2]), "shape cycles");
    }

    #[test]
    fn unknown_task_is_an_error() {
        let err = Task::by_name("mnist").unwrap_err().to_string();
        assert!(err.contains("unknown task 'mnist'"), "{err}");
    }
}
