//! The pixel judge: reads the component of an image as the component of the nearest real
//! training image in pixel space. It shares nothing with the model, so it can say whether a
//! decoded result shows what was intended where the model's own encoder cannot: the cycle
//! terms train the encoder to read the decoder's drawings, which may show the component to the
//! encoder and not to a person. An instrument of evaluation only: it uses the true components
//! of [`JUDGE_IMAGES`] training images, which training never sees.

use burn::prelude::*;

use crate::context::code_tensor;
use crate::inference::{INFERENCE_BATCH, Run};

/// Training images the judge compares with.
pub const JUDGE_IMAGES: usize = 5000;

/// Reference images and their components.
pub struct PixelJudge {
    /// [n, C·H·W] reference pixels.
    references: Tensor<2>,
    /// Squared norm of each reference.
    norms: Tensor<2>,
    components: Vec<usize>,
    len: usize,
}

impl PixelJudge {
    /// The judge of `run`: the last [`JUDGE_IMAGES`] training images (the nuisance probe
    /// takes the first ones) and their components.
    pub fn fit(run: &Run) -> PixelJudge {
        let train = &run.ctx.split.train;
        let items = &train[train.len().saturating_sub(JUDGE_IMAGES)..];
        let data = &run.ctx.data;
        let components = items.iter().map(|&i| data.components[i]).collect();
        PixelJudge::new(data.render_batch(items), components, data.image_len(), &run.ctx.device)
    }

    /// A judge of reference images `pixels` (row-major, `len` values each) in `components`.
    pub fn new(pixels: Vec<f32>, components: Vec<usize>, len: usize, device: &Device) -> Self {
        let references = code_tensor(pixels, len, device);
        let norms = references.clone().powi_scalar(2).sum_dim(1).transpose();
        PixelJudge { references, norms, components, len }
    }

    /// The component of the nearest reference to each image (row-major `len` values each);
    /// squared distances, ‖x‖² being the same for every reference of one image, compare as
    /// ‖r‖² − 2·x·r.
    pub fn read(&self, images: &[f32]) -> Vec<usize> {
        let device = self.references.device();
        images
            .chunks(INFERENCE_BATCH * self.len)
            .flat_map(|chunk| {
                let x = code_tensor(chunk.to_vec(), self.len, &device);
                let cross = x.matmul(self.references.clone().transpose());
                let distance = self.norms.clone() - cross.mul_scalar(2.0);
                let nearest = distance.argmin(1).into_data();
                let nearest: Vec<i64> = nearest.convert::<i64>().try_into_vec().expect("indices");
                nearest.into_iter().map(|j| self.components[j as usize]).collect::<Vec<_>>()
            })
            .collect()
    }

    /// Share of `images` the judge reads as `intended` (one component per image).
    pub fn accuracy(&self, images: &[f32], intended: &[usize]) -> f64 {
        let read = self.read(images);
        let right = read.iter().zip(intended).filter(|(a, b)| a == b).count();
        right as f64 / intended.len().max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_reference_decides() {
        let device = Device::flex();
        // Three references of two pixels in components 7, 8, 9.
        let judge = PixelJudge::new(vec![0.0, 0.0, 1.0, 0.0, 0.0, 1.0], vec![7, 8, 9], 2, &device);
        let images = [0.1, 0.1, 0.9, 0.2, 0.3, 0.8, 1.0, 0.0];
        assert_eq!(judge.read(&images), [7, 8, 9, 8]);
        assert_eq!(judge.accuracy(&images, &[7, 8, 8, 8]), 0.75);
    }

    #[test]
    fn a_renderer_image_is_read_as_its_own_component() {
        let data = crate::tasks::TaskData::open("dsprites", None).unwrap();
        let items: Vec<usize> = (0..400).map(|i| i * 131 % data.len()).collect();
        let components: Vec<usize> = items.iter().map(|&i| data.components[i]).collect();
        let pixels = data.render_batch(&items);
        let judge =
            PixelJudge::new(pixels.clone(), components.clone(), data.image_len(), &Device::flex());
        assert_eq!(judge.accuracy(&pixels, &components), 1.0);
    }
}
