//! Tasks: which factors of a dataset are kept (as classes or bands of values), which images are
//! in the task, and everything else that differs between the paper's benchmarks — the
//! networks' architecture, the built-in relations, the component-preserving augmentation, the
//! presets' step budgets and the paper's own numbers. One module per built-in task; this file
//! is their registry.

mod component;
pub mod dsprites;
pub mod folder;
pub mod hwf;
pub mod paper;
pub mod shapes3d;

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::data::augment::Augmentation;
use crate::data::{FactorDataset, ImageShape};
use crate::model::Architecture;
use crate::rel::RelationDecl;
use crate::{Error, Result};

pub use component::KeptFactor;
pub use paper::PaperNumbers;

/// Names of the built-in tasks.
pub const TASKS: [&str; 4] = ["dsprites", "dsprites-full", "shapes3d", "hwf"];
/// The task of a folder dataset (SPEC §1), made from its data and config.
pub const FOLDER: &str = "folder";

/// The built-in task `name`.
pub fn by_name(name: &str) -> Result<Task> {
    match name {
        "dsprites" => Ok(dsprites::task(false)),
        "dsprites-full" => Ok(dsprites::task(true)),
        "shapes3d" => Ok(shapes3d::task()),
        "hwf" => Ok(hwf::task()),
        other => Err(Error::Unknown(format!(
            "unknown task '{other}' (known: {}, and {FOLDER} for a folder dataset)",
            TASKS.join(", ")
        ))),
    }
}

/// The task and data a config names: a built-in task on its renderer or official file, or a
/// folder dataset; the config's declared relations join the task's own, and its
/// `[supervised]` section sets the task's views.
pub fn open(config: &Config) -> Result<TaskData> {
    let mut data = if config.task == FOLDER {
        folder::open(config)?
    } else {
        let task = by_name(&config.task)?.with_declared(&config.relation)?;
        let dataset = task.open_dataset(config.data.as_deref())?;
        TaskData::new(task, dataset)?
    };
    data.task.augment = data.task.augment.take().map(|a| a.configured(&config.supervised));
    Ok(data)
}

/// Opens a task's dataset: its procedural renderer, or the official file at the path.
pub type DatasetOpener = fn(&Task, Option<&Path>) -> Result<Arc<dyn FactorDataset>>;

/// A task: the dataset it reads, the kept factors and the nuisance subset, and what the
/// presets, the networks and the reports need to know about it.
#[derive(Clone, Debug)]
pub struct Task {
    pub name: String,
    /// Names of the dataset's factors, in label order.
    pub factor_names: Vec<String>,
    pub kept: Vec<KeptFactor>,
    /// For each dataset factor, the classes an image may have to be in the task (None = all).
    pub nuisance_subset: Vec<Option<Vec<usize>>>,
    /// The task's relations (built in, then the run's declared ones), trained when a run
    /// names none.
    pub relations: Vec<RelationDecl>,
    /// Relations offered by name only: they need a differently shaped ReL than the defaults.
    pub relation_variants: Vec<RelationDecl>,
    /// The component-preserving augmentation of the default mode.
    pub augment: Option<Augmentation>,
    /// The encoder's and decoder's layers for the task's images (SPEC §2).
    pub architecture: Architecture,
    pub presets: TaskPresets,
    /// The paper's numbers for this task, where the paper has them.
    pub paper: Option<&'static PaperNumbers>,
    /// How the built-in tasks open their data (a folder task's is opened with its config).
    open: Option<DatasetOpener>,
}

/// What the presets take from the task.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskPresets {
    /// Images in the task on its procedural data, for converting the paper's epochs to steps.
    pub images: usize,
    /// The default preset's schedule.
    pub default: DefaultSchedule,
    /// The paper's own GPU budget.
    pub paper_gpu: PaperGpuBudget,
}

/// The default preset's per-task step budget (measured to fit the 2-core CPU's time budget).
#[derive(Clone, Debug, PartialEq)]
pub struct DefaultSchedule {
    /// Autoencoder steps.
    pub steps: usize,
    /// ReL-only steps after them.
    pub rel_finetune_steps: usize,
    /// Labelled images in each supervised batch.
    pub labelled_batch: usize,
    /// Share of each batch given a strong view for the consistency term.
    pub consistency_share: f64,
    /// ReL updates per autoencoder step.
    pub rel_updates_per_step: usize,
    /// `rel.during_autoencoder`: whether the ReL also trains beside the autoencoder.
    pub rel_during_autoencoder: bool,
    /// `rel.counterfactual_centring` (the share of the NLL left on outputs that carry a
    /// counterfactual code).
    pub counterfactual_centring: f64,
    /// `supervised.shear`: the largest slant of the jitter views.
    pub shear: f64,
}

/// The paper's budget (section 4.2), in epochs of the training split at batch 1024.
#[derive(Clone, Debug, PartialEq)]
pub struct PaperGpuBudget {
    pub warmup_epochs: usize,
    /// All epochs, warm-up included.
    pub epochs: usize,
    pub lr: f64,
}

impl Task {
    /// The dataset this task reads: the procedural renderer, or the official file at `data`.
    pub fn open_dataset(&self, data: Option<&Path>) -> Result<Arc<dyn FactorDataset>> {
        let open = self.open.ok_or_else(|| {
            Error::Invalid(format!("task '{}' opens its data from its config", self.name))
        })?;
        open(self, data)
    }

    /// The task with `declared` relations offered after its own (and trained by default with
    /// them); a declared name may not repeat another relation's.
    pub fn with_declared(mut self, declared: &[RelationDecl]) -> Result<Task> {
        for d in declared {
            if self.relations.iter().chain(&self.relation_variants).any(|r| r.name == d.name) {
                return Err(Error::config(
                    format!("relation '{}'", d.name),
                    "the task already has a relation of this name",
                ));
            }
            self.relations.push(d.clone());
        }
        Ok(self)
    }

    /// Whether an image with these factor classes belongs to the task.
    pub fn contains(&self, classes: &[usize]) -> bool {
        self.nuisance_subset
            .iter()
            .zip(classes)
            .all(|(allowed, c)| allowed.as_ref().is_none_or(|a| a.contains(c)))
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
    pub fn open(name: &str, data: Option<&Path>) -> Result<TaskData> {
        let task = by_name(name)?;
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

    /// Floats in one image.
    pub fn image_len(&self) -> usize {
        self.dataset.image_len()
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
        let full = by_name("dsprites-full").unwrap();
        assert!(full.contains(&[0, 0, 20, 0, 0]));
        assert!(!small.task.contains(&[0, 0, 20, 0, 0]));
    }

    #[test]
    fn every_task_has_its_architecture_and_presets() {
        for name in TASKS {
            let task = by_name(name).unwrap();
            assert_eq!(task.name, name);
            let data = TaskData::new(task.clone(), task.open_dataset(None).unwrap()).unwrap();
            assert_eq!(data.image_shape(), task.architecture.image, "{name}");
            assert_eq!(data.len(), task.presets.images, "{name}");
        }
    }

    #[test]
    fn the_supervised_section_sets_the_opened_tasks_views() {
        let configured = |task: &str| {
            let mut config = Config::preset(crate::config::Preset::Default, task).unwrap();
            config.supervised.shear = 0.3;
            config.supervised.edge_share = 0.25;
            open(&config).unwrap().task.augment
        };
        assert!(matches!(configured("hwf"), Some(Augmentation::Jitter { max_shear: 0.3, .. })));
        let Some(Augmentation::Sprite(sprites)) = configured("dsprites") else {
            panic!("dSprites augments sprites")
        };
        assert_eq!(sprites.edge_share, 0.25);
    }

    #[test]
    fn unknown_task_is_an_error() {
        let err = by_name("mnist").unwrap_err().to_string();
        assert!(err.contains("unknown task 'mnist'"), "{err}");
    }
}
