//! Stand-in for the part of cubecl-llvm's API that cubecl-cuda names. cubecl-llvm's build
//! script downloads an LLVM bundle, which an offline machine cannot; relatent's `cuda` feature
//! selects cubecl-cuda's C++/NVRTC backend, so the LLVM backend is never called. Build with
//! `cargo build --release --features cuda --config 'patch.crates-io.cubecl-llvm.path="bench/offline-cuda"'`.

pub mod nvptx {
    pub mod ptx_version {
        /// A PTX ISA version; only the LLVM backend emits one, so none is ever chosen here.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct PtxVersion(u32);

        impl PtxVersion {
            pub fn for_driver(_driver: i32) -> Option<Self> {
                None
            }
        }

        impl core::fmt::Display for PtxVersion {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "ptx{}", self.0)
            }
        }
    }
}
pub mod shared {
    pub mod lowered_features {
        use cubecl_core::ir::DeviceProperties;
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum GpuTarget { Nvptx }
        /// Only called when the LLVM backend is selected, which this build never does.
        pub fn restrict_features(_props: &mut DeviceProperties, _target: GpuTarget) {}
    }
}
use cubecl_core::ir::{amd::GfxArch, nvidia::SmArch};
use cubecl_core::prelude::KernelDefinition;
use cubecl_runtime::{compiler::{CompilationError, Compiler}, kernel::BufferIOAttr};
use nvptx::ptx_version::PtxVersion;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LlvmTarget { #[default] Cpu, Nvptx }

#[derive(Clone, Debug, Default)]
pub struct PlironCompiler { pub target: LlvmTarget }

#[derive(Clone, Debug, Default)]
pub struct PlironOptions {
    pub arch: Option<GfxArch>,
    pub sm_arch: Option<SmArch>,
    pub ptx_version: Option<PtxVersion>,
    pub grid_constants: bool,
}

#[derive(Clone, Debug)]
pub struct NvptxModule {
    pub ptx: Vec<core::ffi::c_char>,
    pub entrypoint: String,
    pub ir: String,
    pub shared_memory_size: usize,
    pub io: Vec<BufferIOAttr>,
}

#[derive(Clone, Debug)]
pub enum PlironArtifact { NvptxCode(NvptxModule) }

impl core::fmt::Display for PlironArtifact {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self { PlironArtifact::NvptxCode(m) => write!(f, "{}", m.ir) }
    }
}

impl Compiler for PlironCompiler {
    type Representation = PlironArtifact;
    type CompilationOptions = PlironOptions;
    fn compile(&mut self, _kernel: KernelDefinition, _o: &PlironOptions) -> Result<PlironArtifact, CompilationError> {
        Err(CompilationError::Generic {
            reason: "this build has no LLVM backend; enable cubecl's cuda-cpp".to_string(),
            backtrace: cubecl_environment::backtrace::BackTrace::capture(),
        })
    }
    fn extension(&self) -> &'static str { "ll" }
    fn lang_tag(&self) -> &'static str { "llvm" }
}
