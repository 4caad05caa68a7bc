//! Portable weights: a trained run as one safetensors file (burn-store, in PyTorch's layout)
//! plus a JSON sidecar with what the tensors alone cannot say — the prior, component names,
//! relations and the config.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::nn::BatchNormConfig;
use burn_store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
use serde_json::{Value, json};

use crate::context::RunContext;
use crate::data::images::write_atomic;
use crate::error::{Error, Result};
use crate::inference::{AbsAeModel, Run};
use crate::model::{self, AbsAe, Architecture, Mlp, Vae};
use crate::prior::Mixture;
use crate::run_dir::RunDir;
use crate::train::checkpoint::{Checkpoint, sections};

/// Every network of an AbsAE run, under the names its checkpoint sections use.
#[derive(Module, Debug)]
pub struct AbsAeWeights {
    pub autoencoder: AbsAe,
    pub discriminator: Mlp,
    pub relational_learner: Mlp,
}

/// Every network of a baseline run (FactorVAE adds its total-correlation discriminator).
#[derive(Module, Debug)]
pub struct VaeWeights {
    pub vae: Vae,
    pub tc_discriminator: Option<Mlp>,
}

/// The sidecar written beside `weights`: the same path with a `.json` extension.
pub fn sidecar_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

/// Writes the run in `dir` to `out` (safetensors) and its sidecar, each atomically; nothing is
/// written unless both could be made.
pub fn export_safetensors(dir: &RunDir, out: &Path) -> Result<()> {
    let sidecar = sidecar_path(out);
    if sidecar == out {
        return Err(Error::file(out, "the weights file may not end in .json (the sidecar does)"));
    }
    let checkpoint = Run::read_checkpoint(dir)?;
    let run = Run::from_checkpoint(RunContext::new(dir.read_config()?)?, &checkpoint)?;
    let (weights, prior) = match run.model.absae() {
        Some(absae) => {
            (absae_tensors(&run.ctx, &checkpoint, absae)?, Some(prior_json(&run.ctx, absae)))
        }
        None => (vae_tensors(&run.ctx, &checkpoint)?, None),
    };
    let sidecar_json = sidecar_json(&run, prior);
    let text = serde_json::to_string_pretty(&sidecar_json).expect("JSON values always serialise");
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::file(parent, e))?;
    }
    write_atomic(out, &weights)?;
    write_atomic(&sidecar, text.as_bytes())
}

/// Safetensors bytes of `module`, with linear weights transposed and batch-norm parameters
/// renamed as PyTorch's `load_state_dict` expects.
fn safetensors_bytes(module: &impl Module, metadata: &[(&str, String)]) -> Result<Vec<u8>> {
    let mut store = SafetensorsStore::from_bytes(None).with_to_adapter(BurnToPyTorchAdapter);
    for (key, value) in metadata {
        store = store.metadata(*key, value.clone());
    }
    let failed = |e: burn_store::SafetensorsStoreError| Error::Invalid(format!("export: {e}"));
    module.save_into(&mut store).map_err(failed)?;
    store.get_bytes().map_err(failed)
}

fn absae_tensors(ctx: &RunContext, checkpoint: &Checkpoint, absae: &AbsAeModel) -> Result<Vec<u8>> {
    let discriminator = checkpoint
        .load_module(sections::DISCRIMINATOR, model::discriminator(&ctx.arch, &ctx.device))?;
    let weights = AbsAeWeights {
        autoencoder: absae.ae.clone(),
        discriminator,
        relational_learner: absae.learner.net.clone(),
    };
    safetensors_bytes(&weights, &[("model", "absae".into())])
}

fn vae_tensors(ctx: &RunContext, checkpoint: &Checkpoint) -> Result<Vec<u8>> {
    let vae = checkpoint.load_module(sections::VAE, Vae::new(&ctx.arch, &ctx.device))?;
    let tc_discriminator = match checkpoint.section(sections::TC_DISCRIMINATOR) {
        Ok(_) => Some(checkpoint.load_module(
            sections::TC_DISCRIMINATOR,
            model::total_correlation_discriminator(&ctx.arch, &ctx.device),
        )?),
        Err(_) => None,
    };
    let weights = VaeWeights { vae, tc_discriminator };
    safetensors_bytes(&weights, &[("model", ctx.config.model.name().into())])
}

/// Covariance L·Lᵀ of a component from its row-major Cholesky factor.
fn covariance(cholesky: &[f64], dim: usize) -> Vec<Vec<f64>> {
    (0..dim)
        .map(|i| {
            (0..dim)
                .map(|j| {
                    (0..=i.min(j)).map(|k| cholesky[i * dim + k] * cholesky[j * dim + k]).sum()
                })
                .collect()
        })
        .collect()
}

fn prior_json(ctx: &RunContext, absae: &AbsAeModel) -> Value {
    let Mixture { dim, means, cholesky, .. } = &absae.mixture;
    let task = &ctx.data.task;
    let components: Vec<Value> = means
        .iter()
        .zip(cholesky)
        .enumerate()
        .map(|(k, (mean, l))| {
            json!({
                "id": k,
                "label": task.component_label(k),
                "short": task.component_short_label(k),
                "weight": absae.mixture.weight(k),
                "mean": mean,
                "covariance": covariance(l, *dim),
            })
        })
        .collect();
    let relations: Vec<Value> = absae
        .learner
        .relations
        .relations
        .iter()
        .map(|r| json!({"name": r.name, "arity": r.arity, "outputs": r.outputs, "operator": r.operator}))
        .collect();
    json!({"components": components, "relations": relations})
}

/// The encoder's layers, for rebuilding it outside relatent (the README's PyTorch snippet).
fn architecture_json(arch: &Architecture) -> Value {
    let convs: Vec<Value> = arch
        .encoder
        .iter()
        .map(|c| json!({"kernel": c.kernel, "stride": c.stride, "padding": c.padding}))
        .collect();
    json!({
        "channels": arch.channels,
        "encoder": convs,
        "hidden": model::HIDDEN,
        "leaky_slope": model::LEAKY_SLOPE,
        "batch_norm_epsilon": BatchNormConfig::new(1).epsilon,
    })
}

/// The first test image and its code (a VAE's posterior mean: the first half of its
/// encoder's features), so a port of the encoder can check itself against relatent; null for
/// a run without test images.
fn example_json(run: &Run) -> Value {
    let Some(&item) = run.test().first() else { return Value::Null };
    let image = run.ctx.data.render_batch(&[item]);
    json!({"code": run.encode_pixels(&image), "image": image})
}

fn sidecar_json(run: &Run, prior: Option<Value>) -> Value {
    let [channels, height, width] = run.image_shape();
    json!({
        "format": "relatent safetensors 1",
        "model": run.ctx.config.model.name(),
        "task": run.ctx.data.task.name,
        "latent": run.model.latent(),
        "image": {"channels": channels, "height": height, "width": width, "range": [0.0, 1.0]},
        "layout": "PyTorch: linear weights [out, in], convolutions [out, in, kh, kw], batch norm weight/bias/running_mean/running_var",
        "architecture": architecture_json(&run.ctx.arch),
        "example": example_json(run),
        "prior": prior,
        "config": run.ctx.config,
        "train": {"steps": run.state.step, "seconds": run.state.seconds, "backend": run.state.backend},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covariance_is_l_times_l_transposed() {
        // L = [[2, 0], [1, 3]] → L·Lᵀ = [[4, 2], [2, 10]].
        assert_eq!(covariance(&[2.0, 0.0, 1.0, 3.0], 2), vec![vec![4.0, 2.0], vec![2.0, 10.0]]);
    }

    #[test]
    fn the_sidecar_sits_beside_the_weights() {
        assert_eq!(sidecar_path(Path::new("a/m.safetensors")), PathBuf::from("a/m.json"));
    }
}
