//! The β-VAE and FactorVAE baselines, sweeps and comparisons, on tiny shapes.

mod common;

use burn::prelude::*;
use relatent::config::{Config, Overrides};
use relatent::eval;
use relatent::inference::Run;
use relatent::model;
use relatent::run_dir::RunDir;
use relatent::train::checkpoint::{Checkpoint, sections};
use relatent::train::{Quiet, TrainOptions, Trainer, train};

fn tiny_baseline(dir: &std::path::Path, model: &str) -> Config {
    let path = common::write(dir, "tiny.toml", &format!("model = \"{model}\"\n{}", common::TINY));
    Config::resolve(Some(&path), None, None, &Overrides::default()).unwrap()
}

fn run(config: Config, dir: &RunDir, options: TrainOptions) -> Trainer {
    if !options.resume {
        dir.create(&config).unwrap();
    }
    train(Trainer::new(config).unwrap(), dir, options, &mut Quiet).unwrap()
}

/// Posterior means of fixed test images, decodings of them, and the total-correlation
/// discriminator on fixed codes: equal iff the weights are.
fn fingerprint(dir: &RunDir) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let run = Run::open(dir, None).unwrap();
    let means = run.encode_items(&run.test()[..16]);
    let checkpoint = Checkpoint::read(&dir.checkpoint()).unwrap();
    let disc = model::total_correlation_discriminator(&run.ctx.arch, &run.ctx.device);
    let disc = checkpoint.load_module(sections::TC_DISCRIMINATOR, disc).unwrap().valid();
    let z = Tensor::<2>::from_data(TensorData::new(vec![0.3f32; 16], [2, 8]), &run.ctx.device);
    (means.clone(), run.decode(&means), disc.forward(z).into_data().try_to_vec::<f32>().unwrap())
}

#[test]
fn factor_vae_resume_reaches_the_same_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_baseline(tmp.path(), "factor-vae");
    let whole = RunDir::new(tmp.path().join("whole"));
    run(config.clone(), &whole, TrainOptions::default());
    let split = RunDir::new(tmp.path().join("split"));
    run(config.clone(), &split, TrainOptions { resume: false, stop_at: Some(6) });
    let b = run(config, &split, TrainOptions { resume: true, stop_at: None });
    assert_eq!(b.state.step, 10);
    assert_eq!(common::losses(&whole.metrics()), common::losses(&split.metrics()));
    assert_eq!(fingerprint(&whole), fingerprint(&split));
}

#[test]
fn beta_vae_loss_falls_and_its_eval_has_only_the_baseline_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = tiny_baseline(tmp.path(), "beta-vae");
    config.train.steps = 30;
    config.train.warmup_steps = 1;
    let dir = RunDir::new(tmp.path().join("run"));
    let trained = run(config, &dir, TrainOptions::default());
    let recon: Vec<f64> =
        common::losses(&dir.metrics()).iter().map(|l| l["recon"].as_f64().unwrap()).collect();
    assert!(recon.last().unwrap() < &(0.7 * recon[0]), "reconstruction loss {recon:?}");

    let in_memory = trained.inference_run().unwrap();
    let from_memory = eval::evaluate(&in_memory, in_memory.ctx.config.eval.alpha_rule());
    let from_disk = eval::evaluate_run(&dir, &Default::default(), None, &[]).unwrap();
    assert_eq!(from_memory.reconstruction.bce_per_image, from_disk.reconstruction.bce_per_image);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.eval()).unwrap()).unwrap();
    assert_eq!(json["model"], "beta-vae");
    for key in ["disentanglement", "reconstruction", "train", "task"] {
        assert!(json.get(key).is_some(), "eval.json lacks {key}");
    }
    for key in
        ["classification", "relational", "relational_images", "alpha_rule", "factor_accuracy"]
    {
        assert!(json.get(key).is_none(), "a baseline's eval.json has {key}");
    }
}

#[test]
fn cli_trains_evaluates_draws_and_refuses_what_needs_the_mixture() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = common::write(tmp.path(), "tiny.toml", common::TINY);
    let run = tmp.path().join("bv");
    let out = common::relatent(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--model",
        "beta-vae",
        "--beta",
        "4",
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read_to_string(run.join("config.toml")).unwrap().contains("beta = 4.0"));
    let out = common::relatent(&["figures", run.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for file in ["eval.json", "report.md", "figures/traversals.png", "figures/training_curves.png"]
    {
        assert!(run.join(file).exists(), "{file} missing");
    }
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("β (KL) = 4") && report.contains("latent means"), "{report}");

    let image = tmp.path().join("in.png");
    image::GrayImage::new(64, 64).save(&image).unwrap();
    let out = common::relatent(&[
        "apply",
        run.to_str().unwrap(),
        "--image",
        image.to_str().unwrap(),
        "--relation",
        "move_left",
        "--out",
        tmp.path().join("o.png").to_str().unwrap(),
    ]);
    common::assert_user_error(&out, "beta-vae");
    let out = common::relatent(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--model",
        "vae",
        "--out",
        tmp.path().join("x").to_str().unwrap(),
    ]);
    common::assert_user_error(&out, "model");
    assert!(!tmp.path().join("x").exists(), "nothing written for a bad model");
}

#[test]
fn sweep_runs_the_grid_resumes_and_compares() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg =
        common::write(tmp.path(), "tiny.toml", &common::TINY.replace("steps = 10", "steps = 5"));
    let sweep = tmp.path().join("sweep");
    let args = [
        "sweep",
        "--config",
        cfg.to_str().unwrap(),
        "--models",
        "factor-vae",
        "--out",
        sweep.to_str().unwrap(),
        "--quiet",
    ];
    let out = common::relatent(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = std::fs::read_to_string(sweep.join("comparison.md")).unwrap();
    for gamma in [10, 20, 30, 40, 50, 100] {
        assert!(
            table.contains(&format!("| factor-vae-gamma{gamma} | factor-vae | γ = {gamma} |")),
            "{table}"
        );
    }
    assert!(table.contains("0.894"), "paper's FactorVAE DCI beside ours: {table}");
    let plot = image::open(sweep.join("tradeoff.png")).unwrap();
    assert!(plot.width() > 1000);

    // A second sweep keeps every evaluated run.
    let out = common::relatent(&args);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr).matches("already evaluated").count(), 6);

    // compare refuses a run that has not been evaluated.
    let bare = tmp.path().join("bare");
    let out = common::relatent(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--model",
        "beta-vae",
        "--out",
        bare.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success());
    let out = common::relatent(&[
        "compare",
        sweep.join("factor-vae-gamma10").to_str().unwrap(),
        bare.to_str().unwrap(),
        "--out",
        tmp.path().join("cmp").to_str().unwrap(),
    ]);
    common::assert_user_error(&out, "eval.json");
}

#[test]
fn sweep_points_run_by_index_and_compare_over_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = common::write(
        tmp.path(),
        "grid.toml",
        &format!(
            "{}\n[sweep]\nmodels = [\"absae\"]\nweights = [1.0]\nseeds = [3, 4]\n",
            common::TINY
        ),
    );
    let sweep = tmp.path().join("sweep");
    let base = ["sweep", "--config", cfg.to_str().unwrap(), "--out", sweep.to_str().unwrap()];
    let with = |extra: &[&str]| common::relatent(&[&base[..], extra, &["--quiet"]].concat());

    let list = with(&["--list"]);
    assert!(list.status.success());
    let listed = String::from_utf8_lossy(&list.stdout).to_string();
    let expected = format!("0\t{0}/absae-beta1-seed3\n1\t{0}/absae-beta1-seed4\n", sweep.display());
    assert_eq!(listed, expected);
    assert!(!sweep.exists(), "--list writes nothing");
    // A flag replaces the file's axis.
    let list = with(&["--list", "--seeds", "0,1,2", "--taus", "4,5"]);
    assert_eq!(String::from_utf8_lossy(&list.stdout).lines().count(), 6);

    common::assert_user_error(&with(&["--index", "2"]), "--index 2");
    for index in ["1", "0", "1"] {
        let out = with(&["--index", index]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(!sweep.join("comparison.md").exists(), "--index runs one point only");
    let out = with(&["--compare"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = std::fs::read_to_string(sweep.join("comparison.md")).unwrap();
    assert!(table.contains("| absae-beta1 | absae | β = 1 | 4 | 2 | 3, 4 |"), "{table}");
    assert!(table.contains("## Classification accuracy against α"), "{table}");
    assert!(table.contains("### Relational accuracy from prior samples"), "{table}");
    // The two seeds differ, so the spread of at least one metric is not zero.
    let seeds: Vec<f64> = ["absae-beta1-seed3", "absae-beta1-seed4"]
        .iter()
        .map(|p| {
            let eval = common::read_json(&sweep.join(p).join("eval.json"));
            eval["disentanglement"]["dci"]["mean"].as_f64().unwrap()
        })
        .collect();
    let mean = (seeds[0] + seeds[1]) / 2.0;
    let std = (seeds[0] - seeds[1]).abs() / 2f64.sqrt();
    assert!(table.contains(&format!("{mean:.3} ± {std:.3}")), "{seeds:?} {table}");

    let sbatch = tmp.path().join("job.sbatch");
    let out = with(&["--emit-sbatch", sbatch.to_str().unwrap(), "--max-parallel", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let script = std::fs::read_to_string(&sbatch).unwrap();
    assert!(script.contains("#SBATCH --array=0-1%1"), "{script}");
    assert!(!script.contains("--emit-sbatch") && !script.contains("--max-parallel"), "{script}");
    // A bad point is caught when the script is written, not on the cluster.
    let bad = tmp.path().join("bad.sbatch");
    let out = with(&["--emit-sbatch", bad.to_str().unwrap(), "--set", "train.lr=fast"]);
    common::assert_user_error(&out, "train.lr");
    assert!(!bad.exists());
}

#[test]
fn compare_takes_runs_without_disentanglement_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, _) = common::run_tiny("hwf", tmp.path());
    let cmp = tmp.path().join("cmp");
    let out = common::relatent(&["compare", run.to_str().unwrap(), "--out", cmp.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = std::fs::read_to_string(cmp.join("comparison.md")).unwrap();
    assert!(md.contains("| 4 | 3 | – | – | – | – | – | – |"), "{md}");
    assert!(md.contains("## Classification accuracy against α"), "{md}");
    assert!(cmp.join("tradeoff.png").exists());
}
