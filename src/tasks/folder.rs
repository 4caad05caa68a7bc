//! The folder task: a user's own images (a [`FolderDataset`]) with the factors their config
//! keeps, the bands it splits numbers into, and the relations it declares. Everything the
//! built-in tasks fix by hand follows from the data here: the networks from the image size,
//! the default preset's budget from the number and size of the images.

use std::path::Path;
use std::sync::Arc;

use super::{DefaultSchedule, KeptFactor, PaperGpuBudget, Task, TaskData, TaskPresets};
use crate::config::{Config, FolderAugment, FolderConfig};
use crate::data::augment::Augmentation;
use crate::data::folder::{FolderDataset, FolderFactor, FolderOptions, FolderScan as Scan};
use crate::data::inspect::{FileSummary, FolderSummary};
use crate::data::{FactorDataset, ImageShape};
use crate::model::Architecture;
use crate::rel::RelationDecl;
use crate::{Error, Result};

/// Opens the folder dataset of `config` and binds it to the task its `[folder]` table and
/// `[[relation]]` tables declare.
pub fn open(config: &Config) -> Result<TaskData> {
    let folder = config.folder.clone().unwrap_or_default();
    let dir = config.data.as_deref().ok_or_else(|| {
        Error::config("data", "task 'folder' needs data = the folder holding factors.csv")
    })?;
    let options = FolderOptions { classes: folder.classes.clone(), image_size: folder.image_size };
    let dataset = FolderDataset::open(dir, &options)?;
    let task = task(&dataset, &folder, &config.relation)?;
    TaskData::new(task, Arc::new(dataset))
}

/// `data inspect` of the folder at `dir`, read (and so checked) whole with `folder`'s
/// settings: images, shapes, every factor's classes with their counts, the components and
/// the images of each.
pub fn inspect(dir: &Path, folder: &FolderConfig) -> Result<FileSummary> {
    let options = FolderOptions { classes: folder.classes.clone(), image_size: folder.image_size };
    let dataset = FolderDataset::open(dir, &options)?;
    let factors = dataset.folder_factors();
    let mut counts: Vec<Vec<usize>> =
        factors.iter().map(|f| vec![0; f.class_names.len()]).collect();
    for i in 0..dataset.len() {
        for (f, c) in dataset.factor_classes(i).into_iter().enumerate() {
            counts[f][c] += 1;
        }
    }
    let classes = factors
        .iter()
        .zip(&counts)
        .map(|(f, n)| {
            (f.name.clone(), f.class_names.iter().cloned().zip(n.iter().copied()).collect())
        })
        .collect();
    let sizes = factors.iter().map(|f| (f.name.clone(), f.class_names.len())).collect();
    let (width, height) = dataset.source_size;
    let task = task(&dataset, folder, &[])?;
    let data = TaskData::new(task, Arc::new(dataset))?;
    let task = &data.task;
    let mut per_component = vec![0; task.components()];
    for &c in &data.components {
        per_component[c] += 1;
    }
    Ok(FileSummary {
        format: "folder".into(),
        images: data.len(),
        image_shape: data.image_shape().to_vec(),
        factors: sizes,
        skipped_symbols: None,
        folder: Some(FolderSummary {
            source_size: [width, height],
            classes,
            kept: task.kept.iter().map(|k| k.name.clone()).collect(),
            components: task.components(),
            component_images: (0..task.components())
                .map(|c| (task.component_label(c), per_component[c]))
                .collect(),
        }),
    })
}

/// The task of a folder dataset.
pub fn task(
    dataset: &FolderDataset,
    folder: &FolderConfig,
    declared: &[RelationDecl],
) -> Result<Task> {
    let factors = dataset.folder_factors();
    let names: Vec<&str> = factors.iter().map(|f| f.name.as_str()).collect();
    let kept_names: Vec<&str> = if folder.kept.is_empty() {
        names.clone()
    } else {
        folder.kept.iter().map(String::as_str).collect()
    };
    for (i, name) in kept_names.iter().enumerate() {
        if !names.contains(name) || kept_names[..i].contains(name) {
            let problem = if names.contains(name) {
                "is listed twice"
            } else {
                "is not a column of factors.csv"
            };
            return Err(Error::config(
                "folder.kept",
                format!("'{name}' {problem} (columns: {})", names.join(", ")),
            ));
        }
    }
    if let Some(name) = folder.bands.keys().find(|b| !kept_names.contains(&b.as_str())) {
        return Err(Error::config(
            format!("folder.bands.{name}"),
            format!("'{name}' is not a kept factor"),
        ));
    }
    let kept = kept_names
        .iter()
        .map(|name| {
            let f = names.iter().position(|n| n == name).expect("checked above");
            match folder.bands.get(*name) {
                Some(&n) => banded(&factors[f], f, n),
                None => Ok(KeptFactor {
                    name: name.to_string(),
                    factor: f,
                    class_of: (0..factors[f].class_names.len()).collect(),
                    class_names: factors[f].class_names.clone(),
                    values: factors[f].values.clone(),
                }),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let shape = dataset.image_shape();
    let mut task = Task {
        name: super::FOLDER.into(),
        factor_names: names.iter().map(|n| n.to_string()).collect(),
        nuisance_subset: vec![None; factors.len()],
        relations: Vec::new(),
        relation_variants: Vec::new(),
        augment: jitter(&folder.augment),
        architecture: Architecture::k4s2p1(shape, 0, 0),
        presets: presets(&Scan { images: dataset.len(), shape }),
        paper: None,
        open: None,
        kept,
    };
    task.architecture = architecture(shape, task.components());
    task.relations = if declared.is_empty() { default_relations(&task) } else { Vec::new() };
    task.with_declared(declared)
}

/// The networks for images of `shape` and `components` mixture components: 32 convolution
/// channels for grey images and 64 for colour (as the paper's dSprites and Shapes3D tables), a
/// latent of 8 dimensions up to 40 components and 16 beyond.
pub fn architecture(shape: ImageShape, components: usize) -> Architecture {
    let channels = if shape[0] == 1 { 32 } else { 64 };
    Architecture::k4s2p1(shape, channels, if components <= 40 { 8 } else { 16 })
}

/// The default preset's budget for a folder dataset, chosen by the network's input size so
/// that `relatent run` fits about 20 minutes on a 2-core CPU whatever the number of images
/// (a step's cost follows the pixels, not the dataset): up to 32×32 grey, where a step costs
/// about a third of a 64×64 one, 6000 autoencoder steps and 3000 ReL-only steps (3000 steps
/// left MNIST's digits 1.4 points lower); up to 64×64 grey or 32×32 colour, 2500 and 2000
/// (dSprites' autoencoder budget until it rose to 3500, not measured on folders yet); up to
/// 64×64 colour, Shapes3D's 2000 and 16 000 with half the extra views; larger,
/// 800 and 2000 with a quarter.
pub fn presets(summary: &Scan) -> TaskPresets {
    let [c, h, w] = summary.shape;
    let pixels = c * h * w;
    let schedule =
        |steps, rel_finetune_steps, labelled_batch, consistency_share, rel_updates_per_step| {
            DefaultSchedule {
                steps,
                rel_finetune_steps,
                labelled_batch,
                consistency_share,
                rel_updates_per_step,
                rel_during_autoencoder: true,
                counterfactual_centring: 1.0,
                // Measured on HWF only; a folder's kept factor may be a slant.
                shear: 0.0,
            }
        };
    let default = if pixels <= 32 * 32 {
        schedule(6000, 3000, 64, 1.0, 2)
    } else if pixels <= 64 * 64 {
        schedule(2500, 2000, 64, 1.0, 2)
    } else if pixels <= 3 * 64 * 64 {
        schedule(2000, 16_000, 32, 0.5, 1)
    } else {
        schedule(800, 2000, 16, 0.25, 1)
    };
    TaskPresets {
        images: summary.images,
        default,
        paper_gpu: PaperGpuBudget { warmup_epochs: 1000, epochs: 6000, lr: 1e-4 },
    }
}

/// An integer factor split into `n` equal bands of its value range, each named by the values
/// it holds (e.g. `0–10`).
fn banded(factor: &FolderFactor, index: usize, n: usize) -> Result<KeptFactor> {
    let key = format!("folder.bands.{}", factor.name);
    let values = factor.values.as_ref().ok_or_else(|| {
        Error::config(
            &key,
            format!("'{}' has named classes; only integer factors split into bands", factor.name),
        )
    })?;
    if n > values.len() {
        return Err(Error::config(&key, format!("{n} bands of {} distinct values", values.len())));
    }
    let (lo, hi) = (values[0] as f64, values[values.len() - 1] as f64);
    let class_of: Vec<usize> = values
        .iter()
        .map(|&v| (((v as f64 - lo) / (hi - lo) * n as f64) as usize).min(n - 1))
        .collect();
    let class_names = (0..n)
        .map(|band| {
            let inside: Vec<i64> = values
                .iter()
                .zip(&class_of)
                .filter(|(_, b)| **b == band)
                .map(|(v, _)| *v)
                .collect();
            match (inside.first(), inside.last()) {
                (Some(a), Some(b)) if a != b => Ok(format!("{a}–{b}")),
                (Some(a), _) => Ok(a.to_string()),
                _ => Err(Error::config(
                    &key,
                    format!("band {} of {n} holds no value of '{}'", band + 1, factor.name),
                )),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(KeptFactor { name: factor.name.clone(), factor: index, class_of, class_names, values: None })
}

/// The jitter views `augment` asks for (unslanted: `supervised.shear` slants them); None when
/// it asks for none.
fn jitter(augment: &FolderAugment) -> Option<Augmentation> {
    let FolderAugment { rotation, scale, shift } = *augment;
    (rotation > 0.0 || scale != [1.0, 1.0] || shift > 0.0).then_some(Augmentation::Jitter {
        max_rotation: rotation,
        max_shear: 0.0,
        scale: (scale[0], scale[1]),
        max_shift: shift,
    })
}

/// Without declared relations, the next and the previous class of every kept factor (wrapping).
fn default_relations(task: &Task) -> Vec<RelationDecl> {
    task.kept
        .iter()
        .filter(|k| k.classes() > 1)
        .flat_map(|k| {
            [
                RelationDecl::shift(&format!("next_{}", k.name), &k.name, 1, true),
                RelationDecl::shift(&format!("previous_{}", k.name), &k.name, -1, true),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_split_the_value_range_evenly() {
        let positions = FolderFactor {
            name: "x".into(),
            class_names: Vec::new(),
            values: Some((0..32).collect()),
        };
        let k = banded(&positions, 3, 3).unwrap();
        let sizes: Vec<usize> =
            (0..3).map(|b| k.class_of.iter().filter(|&&c| c == b).count()).collect();
        assert_eq!(sizes, [11, 10, 11], "dSprites' bands");
        assert_eq!(k.class_names, ["0–10", "11–20", "21–31"]);
        let named =
            FolderFactor { name: "kind".into(), class_names: vec!["a".into()], values: None };
        assert!(banded(&named, 0, 2).unwrap_err().to_string().contains("folder.bands.kind"));
        let sparse = FolderFactor {
            name: "s".into(),
            class_names: Vec::new(),
            values: Some(vec![0, 1, 100]),
        };
        assert!(banded(&sparse, 0, 3).unwrap_err().to_string().contains("holds no value"));
    }

    #[test]
    fn presets_follow_the_image_size() {
        let steps = |shape| presets(&Scan { images: 1000, shape }).default.steps;
        assert_eq!(
            (steps([1, 32, 32]), steps([1, 64, 64]), steps([3, 64, 64]), steps([3, 128, 128])),
            (6000, 2500, 2000, 800)
        );
        assert_eq!(architecture([3, 32, 32], 120), Architecture::k4s2p1([3, 32, 32], 64, 16));
        assert_eq!(architecture([1, 16, 16], 10).encoder.len(), 2);
    }
}
