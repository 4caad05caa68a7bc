//! `relatent export`: the safetensors file holds every network of the run in PyTorch's layout,
//! so loading it back (PyTorch → burn) gives the same codes, ReL outputs and discriminator
//! scores; the sidecar holds the prior and the config.

mod common;

use burn::prelude::*;
use burn_store::{ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use relatent::export::AbsAeWeights;
use relatent::inference::{AbsAeModel, Run};
use relatent::model::{self, AbsAe};
use relatent::rel::learner::RelationalLearner;
use relatent::run_dir::RunDir;
use relatent::train::checkpoint::{Checkpoint, sections};

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// The README's PyTorch snippet, run on `weights` and its sidecar by a Python that has torch
/// and safetensors (`RELATENT_PYTHON`, else `python3`): it rebuilds the encoder, loads the
/// weights and must reproduce the sidecar's example code to 1e-5. Skipped, saying so, where
/// no such Python is installed.
fn readme_snippet_reproduces_the_code(weights: &std::path::Path) {
    let python = std::env::var("RELATENT_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_torch = std::process::Command::new(&python)
        .args(["-c", "import torch, safetensors"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_torch {
        eprintln!("skipped: {python} cannot import torch and safetensors (set RELATENT_PYTHON)");
        return;
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let fence = "```python\n";
    let start = readme.find(fence).expect("the README has a Python snippet") + fence.len();
    let snippet = &readme[start..start + readme[start..].find("```").unwrap()];
    let sidecar = relatent::export::sidecar_path(weights);
    let script = snippet
        .replace("\"a.safetensors\"", &format!("{:?}", weights.to_str().unwrap()))
        .replace("\"a.json\"", &format!("{:?}", sidecar.to_str().unwrap()));
    let out = std::process::Command::new(&python).args(["-c", &script]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("largest difference from relatent's code"), "{stdout}");
}

#[test]
fn exported_weights_load_back_to_the_same_codes_and_the_sidecar_has_the_prior() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = common::run_tiny("hwf", tmp.path());
    let weights = tmp.path().join("out/model.safetensors");
    let out = common::relatent(&[
        "export",
        dir.to_str().unwrap(),
        "--format",
        "safetensors",
        "--out",
        weights.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let run = Run::open(&RunDir::new(&dir), None).unwrap();
    let absae = run.absae().unwrap();
    let (arch, device) = (&run.ctx.arch, &run.ctx.device);
    let relations = &absae.learner.relations;
    let mut loaded = AbsAeWeights {
        autoencoder: AbsAe::new(arch, device),
        discriminator: model::discriminator(arch, device),
        relational_learner: model::relational_learner(
            arch,
            relations.input_width(arch.latent),
            relations.outputs(),
            device,
        ),
    };
    let bytes = std::fs::read(&weights).unwrap();
    let mut store =
        SafetensorsStore::from_bytes(Some(bytes)).with_from_adapter(PyTorchToBurnAdapter);
    let applied = loaded.load_from(&mut store).unwrap();
    assert!(applied.missing.is_empty() && applied.unused.is_empty(), "{applied:?}");
    assert!(applied.errors.is_empty(), "{applied:?}");

    // The reloaded networks give the run's codes and the ReL's outputs.
    let items = run.test()[..16].to_vec();
    let codes = run.encode_items(&items);
    let input = Tensor::<2>::random(
        [5, relations.input_width(arch.latent)],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        device,
    );
    let rel_before = values(absae.learner.net.forward(input.clone()));
    let reloaded = AbsAeModel {
        ae: loaded.autoencoder.valid(),
        mixture: absae.mixture.clone(),
        learner: RelationalLearner {
            net: loaded.relational_learner.valid(),
            ..absae.learner.clone()
        },
        task: absae.task.clone(),
    };
    let rel_after = values(reloaded.learner.net.forward(input));
    let z = Tensor::<2>::from_data(TensorData::new(codes[..8 * 8].to_vec(), [8, 8]), device);
    let checkpoint = Checkpoint::read(&RunDir::new(&dir).checkpoint()).unwrap();
    let disc = checkpoint
        .load_module(sections::DISCRIMINATOR, model::discriminator(arch, device))
        .unwrap()
        .valid();
    let disc_before = values(disc.forward(z.clone()));
    let disc_after = values(loaded.discriminator.valid().forward(z));
    let mut reloaded_run = run;
    let absae_mixture = reloaded.mixture.clone();
    reloaded_run.model = Box::new(reloaded);
    assert!(max_difference(&codes, &reloaded_run.encode_items(&items)) < 1e-5);
    assert!(max_difference(&rel_before, &rel_after) < 1e-5);
    assert!(max_difference(&disc_before, &disc_after) < 1e-5);

    // The sidecar: prior means and names of all 13 components, the config, PyTorch layout.
    let sidecar = common::read_json(&tmp.path().join("out/model.json"));
    assert_eq!(sidecar["model"], "absae");
    assert_eq!(sidecar["task"], "hwf");
    assert_eq!(sidecar["config"]["tau"], 4);
    let components = sidecar["prior"]["components"].as_array().unwrap();
    assert_eq!(components.len(), 13);
    assert_eq!(components[10]["short"], "+");
    let mean: Vec<f64> = serde_json::from_value(components[3]["mean"].clone()).unwrap();
    assert_eq!(mean, absae_mixture.means[3]);
    let covariance = components[3]["covariance"].as_array().unwrap();
    assert_eq!(covariance.len(), 8);
    assert_eq!(covariance[1][2], covariance[2][1]);
    let names: Vec<&str> = sidecar["prior"]["relations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sum", "sub", "mul"]);
    readme_snippet_reproduces_the_code(&weights);
}

#[test]
fn export_refuses_an_untrained_run_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let weights = tmp.path().join("w.safetensors");
    let missing = tmp.path().join("no-run");
    let out = common::relatent(&[
        "export",
        missing.to_str().unwrap(),
        "--out",
        weights.to_str().unwrap(),
    ]);
    common::assert_user_error(&out, "no-run");
    assert!(!weights.exists() && !tmp.path().join("w.json").exists());
    let out =
        common::relatent(&["export", missing.to_str().unwrap(), "--format", "onnx", "--out", "x"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Tensor names in a safetensors file's header (8-byte little-endian length, then JSON).
fn tensor_names(path: &std::path::Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    header.as_object().unwrap().keys().filter(|k| *k != "__metadata__").cloned().collect()
}

#[test]
fn a_factor_vae_exports_its_vae_and_total_correlation_discriminator() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = common::write(tmp.path(), "tiny.toml", common::TINY);
    let run = tmp.path().join("fv");
    let out = common::relatent(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--model",
        "factor-vae",
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let weights = tmp.path().join("fv.safetensors");
    let out =
        common::relatent(&["export", run.to_str().unwrap(), "--out", weights.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let names = tensor_names(&weights);
    assert!(names.iter().any(|n| n.starts_with("vae.encoder.")), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("tc_discriminator.")), "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("vae.") || n.starts_with("tc_discriminator.")));
    let sidecar = common::read_json(&tmp.path().join("fv.json"));
    assert_eq!(sidecar["model"], "factor-vae");
    assert!(sidecar["prior"].is_null());
    readme_snippet_reproduces_the_code(&weights);
}
