//! HWF (SPEC §1): 13 components, one per symbol (digit d is component d, then `+`, `-`, `×`);
//! the writer's style is the nuisance. Relations are binary arithmetic mod 10, the operator's
//! code telling the ReL which; the two-output variants write the result in full (paper
//! figure 10).

use std::sync::Arc;

use super::paper::PaperNumbers;
use super::{DefaultSchedule, KeptFactor, PaperGpuBudget, Task, TaskPresets};
use crate::data::augment::Augmentation;
use crate::data::hwf::{self, HwfRenderer};
use crate::data::hwf_files::HwfFiles;
use crate::model::{Architecture, ConvSpec};
use crate::rel::{Operation, RelationSpec, ResultForm};

const PLUS: usize = 10;
const MINUS: usize = 11;
const TIMES: usize = 12;

/// Task `hwf`.
pub fn task() -> Task {
    let arithmetic = |name: &str, operation, form, operator| RelationSpec::Arithmetic {
        name: name.into(),
        operation,
        form,
        operator,
        signs: (PLUS, MINUS),
    };
    let symbols = KeptFactor {
        name: "symbol",
        factor: 0,
        class_of: (0..13).collect(),
        class_names: hwf::SYMBOLS.to_vec(),
    };
    Task {
        name: "hwf".into(),
        kept: vec![symbols],
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
        architecture: architecture(),
        presets: TaskPresets {
            images: 13 * hwf::STYLES,
            default: DefaultSchedule {
                steps: 1500,
                rel_finetune_steps: 4000,
                labelled_batch: 64,
                consistency_share: 1.0,
                rel_updates_per_step: 2,
            },
            paper_gpu: PaperGpuBudget { warmup_epochs: 1000, epochs: 6000, lr: 1e-4 },
        },
        paper: Some(&PAPER),
        open: |_, data| match data {
            None => Ok(Arc::new(HwfRenderer)),
            Some(path) => Ok(Arc::new(HwfFiles::open(path)?)),
        },
    }
}

/// 45 → 21 → 9 → 4 and back (SPEC §2: k5, k5, k3, stride 2, no padding).
fn architecture() -> Architecture {
    let k5 = ConvSpec { kernel: 5, stride: 2, padding: 0 };
    let k3 = ConvSpec { kernel: 3, stride: 2, padding: 0 };
    Architecture {
        image: [1, 45, 45],
        channels: 32,
        latent: 8,
        encoder: vec![k5, k5, k3],
        encoder_end: 4,
        decoder_start: 4,
        decoder: vec![k3, k5, k5],
    }
}

/// The paper's HWF column (tables 4 and 5; HWF keeps one factor, so table 1 leaves it out).
static PAPER: PaperNumbers = PaperNumbers {
    classification: [
        [
            (0.917, 1.0),
            (0.954, 0.995),
            (0.978, 0.988),
            (0.983, 0.973),
            (0.982, 0.970),
            (0.993, 0.957),
        ],
        [
            (0.977, 1.0),
            (0.992, 0.918),
            (0.990, 0.982),
            (0.993, 0.974),
            (0.995, 0.971),
            (0.999, 0.953),
        ],
        [
            (0.982, 1.0),
            (0.987, 0.995),
            (1.0, 0.985),
            (0.998, 0.982),
            (0.994, 0.986),
            (0.999, 0.951),
        ],
    ],
    relational: [
        [
            (0.9966, 1.0),
            (0.9971, 0.9984),
            (0.9985, 0.9989),
            (0.9980, 0.9989),
            (0.9980, 0.9988),
            (0.9979, 0.9990),
        ],
        [
            (0.9939, 1.0),
            (0.9930, 0.9994),
            (0.9949, 0.9992),
            (0.9945, 0.9993),
            (0.9962, 0.9990),
            (0.9938, 0.9987),
        ],
        [
            (0.9909, 1.0),
            (0.9913, 0.9993),
            (0.9909, 0.9985),
            (0.9909, 0.9993),
            (0.9912, 0.9987),
            (0.9892, 0.9984),
        ],
    ],
    disentanglement: &[],
};
