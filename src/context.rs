//! What every method shares, in training and in inference: the resolved config, the task's
//! data, the split, the networks' architecture and the device.

use std::sync::Arc;

use burn::prelude::*;

use crate::Result;
use crate::backend::training_device;
use crate::config::Config;
use crate::data::{ImageShape, Split};
use crate::model::Architecture;
use crate::tasks::{self, TaskData};

/// One run's shared context.
pub struct RunContext {
    pub config: Config,
    pub data: Arc<TaskData>,
    pub split: Split,
    pub arch: Architecture,
    /// The plain (non-autodiff) device; training wraps it in autodiff.
    pub device: Device,
    /// The device's backend name (`flex`, `cuda`).
    pub backend: &'static str,
}

impl RunContext {
    /// Opens the config's task on its data, draws the split, and picks the device.
    pub fn new(config: Config) -> Result<RunContext> {
        let data = Arc::new(tasks::open(&config)?);
        let task = &data.task;
        let split =
            Split::new(&data.components, task.components(), config.tau, config.seed, &|c| {
                task.component_label(c)
            })?;
        let arch = data.task.architecture.clone();
        let (device, backend) = training_device()?;
        Ok(RunContext { config, data, split, arch, device, backend })
    }

    /// The test images evaluation uses: the test split, or its first `eval.max_test_images`.
    pub fn test_items(&self) -> &[usize] {
        match self.config.eval.max_test_images {
            0 => &self.split.test,
            n => &self.split.test[..n.min(self.split.test.len())],
        }
    }

    /// Channels, height, width of the task's images.
    pub fn image_shape(&self) -> ImageShape {
        self.arch.image
    }

    /// Components of the labelled images, in `split.labelled` order.
    pub fn labelled_components(&self) -> Vec<usize> {
        self.split.labelled.iter().map(|&i| self.data.components[i]).collect()
    }
}

/// `n` images of `shape` (concatenated C·H·W floats) as a tensor on `device`.
pub fn image_tensor(pixels: Vec<f32>, shape: ImageShape, device: &Device) -> Tensor<4> {
    let [c, h, w] = shape;
    let n = pixels.len() / (c * h * w);
    Tensor::from_data(TensorData::new(pixels, [n, c, h, w]), device)
}

/// Codes (row-major n×d) as a tensor on `device`.
pub fn code_tensor(codes: Vec<f32>, d: usize, device: &Device) -> Tensor<2> {
    let n = codes.len() / d;
    Tensor::from_data(TensorData::new(codes, [n, d]), device)
}
