//! Architectures (SPEC §2): the paper's Appendix A tables with consistent shapes. Each task
//! names its own ([`crate::tasks::Task::architecture`]).

use crate::data::ImageShape;

/// One (transposed) convolution: kernel, stride, padding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvSpec {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

/// Everything that differs between the tasks' networks.
#[derive(Clone, Debug, PartialEq)]
pub struct Architecture {
    pub image: ImageShape,
    pub channels: usize,
    pub latent: usize,
    pub encoder: Vec<ConvSpec>,
    /// Side of the decoder's first feature map.
    pub decoder_start: usize,
    pub decoder: Vec<ConvSpec>,
    /// Side of the encoder's last feature map.
    pub encoder_end: usize,
}

const K4S2P1: ConvSpec = ConvSpec { kernel: 4, stride: 2, padding: 1 };

impl Architecture {
    /// Square images of side 4·2ⁿ through n k4 s2 p1 (transposed) convolutions, down to 4×4
    /// and back (64×64: four, as in the paper's tables).
    pub fn k4s2p1(image: ImageShape, channels: usize, latent: usize) -> Architecture {
        let layers = (image[2] / 4).trailing_zeros() as usize;
        debug_assert_eq!(4 << layers, image[2], "the side is 4·2ⁿ");
        Architecture {
            image,
            channels,
            latent,
            encoder: vec![K4S2P1; layers],
            encoder_end: 4,
            decoder_start: 4,
            decoder: vec![K4S2P1; layers],
        }
    }

    /// Features entering the encoder's first linear layer.
    pub fn flat_features(&self) -> usize {
        self.channels * self.encoder_end * self.encoder_end
    }
}
