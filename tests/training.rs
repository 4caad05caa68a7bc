//! Training end to end on tiny shapes: losses fall, checkpoints round-trip, resume is exact.

mod common;

use burn::prelude::*;
use relatent::config::{Config, CycleObjective, Overrides};
use relatent::eval;
use relatent::inference::Run;
use relatent::model;
use relatent::prior::Prior;
use relatent::run_dir::RunDir;
use relatent::train::checkpoint::{Checkpoint, sections};
use relatent::train::{Quiet, TrainOptions, Trainer, train};

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
    let lines = common::losses(&dir.metrics());
    let recon: Vec<f64> = lines.iter().filter_map(|l| l["recon"].as_f64()).collect();
    let (first, last) = (recon[0], recon[recon.len() - 1]);
    assert!(last < 0.5 * first, "reconstruction {first} → {last}");
    assert!(lines.iter().any(|l| l["relational"].is_number()), "the ReL trains after the switch");
}

#[test]
fn the_latent_cycle_is_off_at_weight_0_and_falls_when_trained() {
    let tmp = tempfile::tempdir().unwrap();
    let cycle_losses = |name: &str, objective: CycleObjective, weight: f64| -> Vec<Option<f64>> {
        let mut config = tiny_config(tmp.path(), "");
        (config.train.steps, config.cycle.weight, config.cycle.objective) = (60, weight, objective);
        let dir = RunDir::new(tmp.path().join(name));
        run(config, &dir, TrainOptions::default());
        // The autoencoder's steps: the decoder-only steps at the end report their own cycle.
        let lines = common::losses(&dir.metrics());
        lines.iter().filter(|l| l["phase"] == "mixture").map(|l| l["cycle"].as_f64()).collect()
    };
    assert!(cycle_losses("off", CycleObjective::Start, 0.0).iter().all(Option::is_none));
    for objective in [CycleObjective::Start, CycleObjective::Component] {
        let on: Vec<f64> =
            cycle_losses(objective.name(), objective, 10.0).into_iter().flatten().collect();
        assert!(on.len() >= 20, "reported every logged step after the switch: {on:?}");
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (first, last) = (mean(&on[..5]), mean(&on[on.len() - 5..]));
        assert!(last < 0.5 * first, "{objective:?}: cycle {first} → {last}");
    }
}

/// The terms added to improve relations on real images, each switchable: all off, none is
/// logged; each on alone is logged where it applies and changes the training only from the
/// step it starts at; the default preset has the cycles, the pseudo-labelled codes and the
/// decoder-only steps on.
#[test]
fn terms_for_real_images_are_switchable() {
    let tmp = tempfile::tempdir().unwrap();
    let all_off = |c: &mut Config| {
        (c.cycle.weight, c.cycle.reconstruction, c.rel.pseudo_labelled) = (0.0, 0.0, 0);
        c.cycle.decoder_steps = 0;
    };
    let train_with = |name: &str, change: &dyn Fn(&mut Config)| -> Vec<serde_json::Value> {
        let mut config = tiny_config(tmp.path(), "");
        all_off(&mut config);
        change(&mut config);
        let dir = RunDir::new(tmp.path().join(name));
        run(config, &dir, TrainOptions::default());
        common::losses(&dir.metrics())
    };
    let off = train_with("off", &|_| {});
    let logged = |lines: &[serde_json::Value], key: &str| {
        lines.iter().filter_map(|l| l[key].as_f64()).filter(|v| v.is_finite()).count()
    };
    assert_eq!((logged(&off, "cycle"), logged(&off, "reconstruction_cycle")), (0, 0));
    let warmup = 2; // logged lines before the switch (TINY: warm-up 4, logged every 2)
    let autoencoder = off.iter().filter(|l| l["adversarial"].is_number()).count();

    let reconstruction = train_with("reconstruction", &|c| {
        (c.cycle.reconstruction, c.consistency.threshold) = (1.0, 0.0)
    });
    assert!(logged(&reconstruction, "reconstruction_cycle") > 0);
    let prior = train_with("prior", &|c| c.cycle.weight = 1.0);
    assert!(logged(&prior, "cycle") > 0);
    for on in [&reconstruction, &prior] {
        assert_eq!(on[..warmup], off[..warmup], "nothing changes before the switch");
        assert_ne!(on, &off);
    }
    let pseudo = train_with("pseudo", &|c| c.rel.pseudo_labelled = 40);
    let image = train_with("image", &|c| c.rel.image_cycle = 1.0);
    for on in [&pseudo, &image] {
        assert_eq!(on[..autoencoder], off[..autoencoder], "the ReL-only steps only");
        assert_ne!(on, &off);
    }
    let decoder = train_with("decoder", &|c| c.cycle.decoder_steps = 2);
    // `off` also logs its last step, which `log_every` alone would not.
    let before = off.len() - 1;
    assert_eq!(decoder[..before], off[..before], "steps added after the others");
    assert_eq!(decoder.last().unwrap()["phase"], "decoder");

    let default = tiny_config(tmp.path(), "");
    assert!(default.cycle.weight > 0.0 && default.cycle.reconstruction > 0.0);
    assert!(default.rel.pseudo_labelled > 0 && default.rel.image_cycle == 0.0);
    assert!(default.cycle.decoder_steps > 0);
}

#[test]
fn resume_reaches_the_same_weights_as_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), "");
    let whole = RunDir::new(tmp.path().join("whole"));
    run(config.clone(), &whole, TrainOptions::default());

    // Interrupted during the autoencoder phase, during the ReL-only phase (whose batches
    // include the frozen labelled codes, recomputed after the resume) and during the
    // decoder-only steps (whose frozen encoder is rebuilt).
    for stop in [6, 11, 14] {
        let split = RunDir::new(tmp.path().join(format!("split-{stop}")));
        run(config.clone(), &split, TrainOptions { resume: false, stop_at: Some(stop) });
        let b = run(config.clone(), &split, TrainOptions { resume: true, stop_at: None });
        assert_eq!(b.state.step, 15);
        assert_eq!(
            common::losses(&whole.metrics()),
            common::losses(&split.metrics()),
            "stop at {stop}"
        );
        assert_same_weights(&whole, &split);
    }
}

/// Runs initialising at the same moment in one process (here: threads) still depend on their
/// seed alone, although the backend's random generator is one for the whole process.
#[test]
fn runs_started_together_train_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), "");
    let dirs: Vec<RunDir> = (0..4).map(|i| RunDir::new(tmp.path().join(format!("r{i}")))).collect();
    std::thread::scope(|scope| {
        for dir in &dirs {
            let config = config.clone();
            scope.spawn(move || {
                run(config, dir, TrainOptions { resume: false, stop_at: Some(4) });
            });
        }
    });
    let first = common::losses(&dirs[0].metrics());
    assert!(!first.is_empty());
    for dir in &dirs[1..] {
        assert_eq!(first, common::losses(&dir.metrics()));
    }
}

/// Same weights ⇔ same outputs, bit for bit, on fixed inputs (records differ in parameter ids).
fn assert_same_weights(a: &RunDir, b: &RunDir) {
    let (ra, rb) = (Run::open(a, None).unwrap(), Run::open(b, None).unwrap());
    let items = ra.test()[..16].to_vec();
    let codes = ra.encode_items(&items);
    assert_eq!(codes, rb.encode_items(&items));
    assert_eq!(ra.decode(&codes), rb.decode(&codes));
    let (ma, mb) = (ra.absae().unwrap(), rb.absae().unwrap());
    assert_eq!(ma.mixture, mb.mixture);
    let width = ma.learner.input_width();
    let rows: Vec<f32> = (0..16 * width).map(|i| (i % 7) as f32 * 0.3 - 1.0).collect();
    assert_eq!(ma.learner.apply_rows(&rows), mb.learner.apply_rows(&rows));
    let discriminator = |dir: &RunDir| {
        let checkpoint = Checkpoint::read(&dir.checkpoint()).unwrap();
        assert!(matches!(checkpoint.json::<Prior>(sections::PRIOR).unwrap(), Prior::Mixture(_)));
        let disc = checkpoint
            .load_module(
                sections::DISCRIMINATOR,
                model::discriminator(&ra.ctx.arch, &ra.ctx.device),
            )
            .unwrap();
        let z = Tensor::<2>::from_data(TensorData::new(codes.clone(), [16, 8]), &ra.ctx.device);
        disc.valid().forward(z).into_data().try_to_vec::<f32>().unwrap()
    };
    assert_eq!(discriminator(a), discriminator(b));
}

/// The depth-1 row split by relation: every chain in one relation's row, and the rows'
/// chain-weighted means are the whole row's.
fn depth_one_splits_by_relation(row: &eval::RelationalRow, samples: usize) {
    assert_eq!((row.depth, row.alpha), (1, 0.0));
    let rows = &row.by_relation;
    assert!(
        rows.len() > 1
            && rows.keys().all(|name| name.starts_with("move_") || name == "change_shape")
    );
    let chains: Vec<f64> = rows.values().map(|r| r.chains.unwrap() as f64).collect();
    assert_eq!(chains.iter().sum::<f64>(), samples as f64);
    let mean = |value: fn(&eval::RelationalRow) -> Option<f64>| {
        rows.values().zip(&chains).map(|(r, n)| value(r).unwrap() * n).sum::<f64>() / samples as f64
    };
    for (measure, value) in [
        ("accuracy", (|r| r.accuracy) as fn(&eval::RelationalRow) -> Option<f64>),
        ("judged", |r| r.judged_accuracy),
        ("IoU", |r| r.iou),
        ("nuisances kept", |r| r.nuisance_kept),
        ("start read right", |r| r.start_read_right),
        ("moved codes read right", |r| r.code_accuracy),
    ] {
        let (whole, split) = (value(row).unwrap(), mean(value));
        assert!((whole - split).abs() < 1e-9, "{measure}: {whole} vs {split}");
    }
    // Chains right from a start read right, counted per relation, add up to the whole row's.
    let right_when_read = |r: &eval::RelationalRow, n: f64| {
        r.accuracy_when_start_read_right.unwrap_or(0.0) * r.start_read_right.unwrap() * n
    };
    let split: f64 = rows.values().zip(&chains).map(|(r, &n)| right_when_read(r, n)).sum();
    let whole = right_when_read(row, samples as f64);
    assert!((whole - split).abs() < 1e-6, "right when read: {whole} vs {split}");
    // Those chains are among the right ones.
    assert!(whole <= row.accuracy.unwrap() * samples as f64 + 1e-6);
}

#[test]
fn checkpoint_round_trips_and_evaluates() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), "");
    let dir = RunDir::new(tmp.path().join("run"));
    let trained = run(config, &dir, TrainOptions::default());
    let in_memory = trained.inference_run().unwrap();
    let from_memory = eval::evaluate(&in_memory, in_memory.ctx.config.eval.alpha_rule());
    let from_disk = eval::evaluate_run(&dir, &Default::default(), None, &[]).unwrap();
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
    let samples = in_memory.ctx.config.eval.relational_samples;
    depth_one_splits_by_relation(&from_disk.relational_images[0], samples);
    assert_eq!(json["train"]["steps"], 15);
    let choice = eval::RuleChoice {
        alpha_rule: Some(relatent::config::AlphaRuleKind::Density),
        posterior_temperature: None,
    };
    let density = eval::evaluate_run(&dir, &choice, None, &[]).unwrap();
    assert_eq!(density.alpha_rule, "density");
    assert_eq!(
        (from_disk.posterior_temperature, density.posterior_temperature),
        (Some(10.0), None),
        "the default preset's temperature is 1 / shrink"
    );
}

#[test]
fn a_corrupt_checkpoint_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), "");
    let dir = RunDir::new(tmp.path().join("run"));
    run(config, &dir, TrainOptions::default());
    let mut bytes = std::fs::read(dir.checkpoint()).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(dir.checkpoint(), &bytes).unwrap();
    let err = Run::open(&dir, None).err().unwrap().to_string();
    assert!(err.contains("checkpoint.bin") && err.contains("fails its checksum"), "{err}");
}
