//! Per-task architectures (SPEC §2): the paper's Appendix A tables with consistent shapes.

use crate::data::ImageShape;
use crate::{Error, Result};

/// One (transposed) convolution: kernel, stride, padding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvSpec {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

const K4S2P1: ConvSpec = ConvSpec { kernel: 4, stride: 2, padding: 1 };
const K5S2P0: ConvSpec = ConvSpec { kernel: 5, stride: 2, padding: 0 };
const K3S2P0: ConvSpec = ConvSpec { kernel: 3, stride: 2, padding: 0 };

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

impl Architecture {
    /// The architecture of task `name`.
    pub fn for_task(name: &str) -> Result<Architecture> {
        match name {
            "dsprites" | "dsprites-full" => Ok(Architecture::k4s2p1_64([1, 64, 64], 32, 8)),
            "shapes3d" => Ok(Architecture::k4s2p1_64([3, 64, 64], 64, 16)),
            // 45 → 21 → 9 → 4 and back (SPEC §2: k3/k5, stride 2, no padding).
            "hwf" => Ok(Architecture {
                image: [1, 45, 45],
                channels: 32,
                latent: 8,
                encoder: vec![K5S2P0, K5S2P0, K3S2P0],
                encoder_end: 4,
                decoder_start: 4,
                decoder: vec![K3S2P0, K5S2P0, K5S2P0],
            }),
            other => Err(Error::Unknown(format!("no architecture for task '{other}'"))),
        }
    }

    /// 64×64 images through four k4 s2 p1 (transposed) convolutions: 64 → 4 and back.
    fn k4s2p1_64(image: ImageShape, channels: usize, latent: usize) -> Architecture {
        Architecture {
            image,
            channels,
            latent,
            encoder: vec![K4S2P1; 4],
            encoder_end: 4,
            decoder_start: 4,
            decoder: vec![K4S2P1; 4],
        }
    }

    /// Features entering the encoder's first linear layer.
    pub fn flat_features(&self) -> usize {
        self.channels * self.encoder_end * self.encoder_end
    }
}
