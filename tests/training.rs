//! Training end to end on tiny shapes: losses fall, checkpoints round-trip, resume is exact.

mod common;

use burn::prelude::*;
use relatent::config::{Config, Overrides};
use relatent::eval::{self, TrainedModel};
use relatent::prior::AlphaRule;
use relatent::run_dir::RunDir;
use relatent::train::{Quiet, TrainOptions, Trainer, encode, relation_input, relation_row, train};

fn tiny_config(dir: &std::path::Path, extra: &str) -> Config {
    let path = common::write(dir, "tiny.toml", &format!("{extra}\n{}", common::TINY));
    Config::resolve(Some(&path), None, None, &Overrides::default()).unwrap()
}

fn run(config: Config, dir: &RunDir, options: TrainOptions) -> Trainer {
    if !options.resume {
        dir.create(&config).unwrap();
    }
    train(Trainer::new(config).unwrap(), dir, options, &mut Quiet).unwrap()
}

#[test]
fn reconstruction_loss_falls() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = tiny_config(tmp.path(), "preset = \"paper\"");
    config.train.steps = 40;
    config.train.warmup_steps = 30;
    config.train.batch_size = 16;
    let dir = RunDir::new(tmp.path().join("run"));
    run(config, &dir, TrainOptions::default());
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(dir.metrics())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let recon: Vec<f64> = lines.iter().filter_map(|l| l["recon"].as_f64()).collect();
    let (first, last) = (recon[0], recon[recon.len() - 1]);
    assert!(last < 0.5 * first, "reconstruction {first} → {last}");
    assert!(lines.iter().any(|l| l["relational"].is_number()), "the ReL trains after the switch");
}

#[test]
fn resume_reaches_the_same_weights_as_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), "");
    let whole = RunDir::new(tmp.path().join("whole"));
    let a = run(config.clone(), &whole, TrainOptions::default());

    // Interrupted during the autoencoder phase, and during the ReL-only phase (whose batches
    // include the frozen labelled codes, recomputed after the resume).
    for stop in [6, 11] {
        let split = RunDir::new(tmp.path().join(format!("split-{stop}")));
        run(config.clone(), &split, TrainOptions { resume: false, stop_at: Some(stop) });
        let b = run(config.clone(), &split, TrainOptions { resume: true, stop_at: None });
        assert_same_run(&a, &whole, &b, &split);
    }
}

fn assert_same_run(a: &Trainer, whole: &RunDir, b: &Trainer, split: &RunDir) {
    assert_eq!((a.state.step, &a.state.prior), (b.state.step, &b.state.prior));
    // Same weights ⇔ same outputs, bit for bit, on fixed inputs (records differ in parameter ids).
    let items: Vec<usize> = a.split.test[..16].to_vec();
    let device = a.device.clone().inner();
    let codes_a = encode(&a.nets.ae, &a.data, &items, &device);
    assert_eq!(codes_a, encode(&b.nets.ae, &b.data, &items, &device));
    let z = || Tensor::<2>::from_data(TensorData::new(codes_a.clone(), [16, 8]), &device);
    let out = |m: &relatent::model::Mlp, x: Tensor<2>| {
        m.valid().forward(x).into_data().try_to_vec::<f32>().unwrap()
    };
    assert_eq!(out(&a.nets.disc, z()), out(&b.nets.disc, z()));
    let rows: Vec<f32> = codes_a
        .chunks_exact(8)
        .flat_map(|z| {
            let mut row = Vec::new();
            relation_row(&a.relations, 0, z, None, &mut row);
            row
        })
        .collect();
    let rel_in = || relation_input(&rows, a.relations.input_width(8), &device);
    assert_eq!(out(&a.nets.rel, rel_in()), out(&b.nets.rel, rel_in()));
    let dec = |t: &Trainer| {
        t.nets.ae.valid().decoder.forward(z()).into_data().try_to_vec::<f32>().unwrap()
    };
    assert_eq!(dec(a), dec(b));
    let lines = std::fs::read_to_string(split.metrics()).unwrap();
    assert_eq!(
        lines.lines().count(),
        std::fs::read_to_string(whole.metrics()).unwrap().lines().count(),
        "no duplicated log lines"
    );
}

#[test]
fn checkpoint_round_trips_and_evaluates() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), "");
    let dir = RunDir::new(tmp.path().join("run"));
    let trained = run(config, &dir, TrainOptions::default());
    let rule = AlphaRule::from_config(&trained.config.eval).unwrap();
    let from_memory = eval::evaluate(&TrainedModel::from_trainer(trained).unwrap(), rule);
    let from_disk = eval::evaluate_run(&dir, &Default::default(), None).unwrap();
    assert_eq!(from_memory.classification, from_disk.classification);
    assert_eq!(from_memory.relational, from_disk.relational);
    assert_eq!(from_memory.relational_images, from_disk.relational_images);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.eval()).unwrap()).unwrap();
    for key in [
        "task",
        "tau",
        "alpha_rule",
        "preset",
        "classification",
        "relational",
        "relational_images",
        "reconstruction",
        "train",
    ] {
        assert!(json.get(key).is_some(), "eval.json lacks {key}");
    }
    assert_eq!(json["classification"].as_array().unwrap().len(), 6);
    assert_eq!(json["relational"].as_array().unwrap().len(), 18);
    let image_rows = json["relational_images"].as_array().unwrap();
    assert_eq!(image_rows.len(), 18);
    assert!(image_rows.iter().all(|r| r["depth"].is_u64()
        && r["accepted_ratio"].as_f64().is_some_and(|a| (0.0..=1.0).contains(&a))));
    assert_eq!(image_rows[0]["accepted_ratio"], 1.0, "α = 0 accepts everything");
    assert_eq!(json["train"]["steps"], 13);
    let density = eval::evaluate_run(
        &dir,
        &eval::RuleChoice { alpha_rule: Some("density".into()), posterior_temperature: None },
        None,
    )
    .unwrap();
    assert_eq!(density.alpha_rule, "density");
    assert_eq!(
        (from_disk.posterior_temperature, density.posterior_temperature),
        (Some(10.0), None),
        "the default preset's temperature is 1 / shrink"
    );
}
