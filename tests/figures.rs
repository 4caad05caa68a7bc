//! What a run leaves to look at: figures, the report, and `relatent apply` on a tiny model.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use common::{TINY, assert_user_error, relatent, write};

/// One tiny run shared by the tests of this file (trained once through `relatent run`).
fn tiny_run() -> &'static Path {
    static RUN: OnceLock<(tempfile::TempDir, std::path::PathBuf)> = OnceLock::new();
    let (_, dir) = RUN.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let config = write(tmp.path(), "tiny.toml", TINY);
        let dir = tmp.path().join("run");
        let out = relatent(&[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
            "--quiet",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (tmp, dir)
    });
    dir
}

fn png_size(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (img.width(), img.height())
}

#[test]
fn run_leaves_figures_and_a_report() {
    let dir = tiny_run();
    let figures = dir.join("figures");
    for name in [
        "prior_means",
        "relations",
        "chains",
        "classification_alpha",
        "relational_alpha",
        "training_curves",
        "pca",
    ] {
        let (w, h) = png_size(&figures.join(format!("{name}.png")));
        assert!(w >= 600 && h >= 300, "{name}: {w}×{h}");
    }
    // 27 dSprites components: 3 shape rows × 9 position columns of 128-px cells.
    assert_eq!(png_size(&figures.join("prior_means.png")), (1328, 486));
    // Two panels of 520×380 under a 36-px title.
    assert_eq!(png_size(&figures.join("classification_alpha.png")), (1040, 416));
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for needle in [
        "## Configuration",
        "| 0.0 |",
        "paper accuracy",
        "from encoded test images",
        "![prior_means](figures/prior_means.png)",
        "procedurally rendered",
    ] {
        assert!(report.contains(needle), "report lacks {needle:?}");
    }
}

#[test]
fn figures_command_redraws_from_eval_json() {
    let dir = tiny_run();
    let out = relatent(&["figures", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("pca.png"));
}

#[test]
fn apply_moves_an_image_and_writes_the_result_and_strip() {
    let dir = tiny_run();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.png");
    image::GrayImage::from_fn(64, 64, |x, y| {
        image::Luma([if (20..30).contains(&x) && (20..30).contains(&y) { 255 } else { 0 }])
    })
    .save(&input)
    .unwrap();
    let result = tmp.path().join("out.png");
    let out = relatent(&[
        "apply",
        dir.to_str().unwrap(),
        "--image",
        input.to_str().unwrap(),
        "--relation",
        "move_left,change_shape",
        "--out",
        result.to_str().unwrap(),
        "--strip",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().filter(|l| l.contains("component")).collect();
    assert_eq!(lines.len(), 3, "input and two steps: {stdout}");
    assert!(lines[1].starts_with("move_left") && lines[2].starts_with("change_shape"), "{stdout}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("posterior") && l.contains("log density") && l.contains("shape=")),
        "{stdout}"
    );
    // Each stage's decoded image is read again, with the nuisances the probe sees in it.
    let seen: Vec<&str> = stdout.lines().filter(|l| l.contains("image reads as")).collect();
    assert_eq!(seen.len(), 3, "{stdout}");
    assert!(
        seen.iter().all(|l| l.contains("shape=")
            && l.contains("nuisances scale")
            && l.contains("orientation")
            && (l.contains("kept") || l.contains("changed"))),
        "{stdout}"
    );
    assert_eq!(png_size(&result), (64, 64));
    let (w, _) = png_size(&tmp.path().join("out-strip.png"));
    assert!(w > 4 * 128, "input, reconstruction and two steps");

    // A smaller image is resized with a warning.
    let small = tmp.path().join("small.png");
    image::GrayImage::new(32, 32).save(&small).unwrap();
    let out = relatent(&[
        "apply",
        dir.to_str().unwrap(),
        "--image",
        small.to_str().unwrap(),
        "--relation",
        "move_up",
        "--out",
        result.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("resized"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn apply_rejects_bad_input_and_writes_nothing() {
    let dir = tiny_run();
    let tmp = tempfile::tempdir().unwrap();
    let result = tmp.path().join("out.png");
    let text = write(tmp.path(), "notes.png", "this is not an image");
    let out = relatent(&[
        "apply",
        dir.to_str().unwrap(),
        "--image",
        text.to_str().unwrap(),
        "--relation",
        "move_up",
        "--out",
        result.to_str().unwrap(),
    ]);
    assert_user_error(&out, "notes.png");
    let missing = tmp.path().join("missing.png");
    let out = relatent(&[
        "apply",
        dir.to_str().unwrap(),
        "--image",
        missing.to_str().unwrap(),
        "--relation",
        "move_up",
        "--out",
        result.to_str().unwrap(),
    ]);
    assert_user_error(&out, "missing.png");
    let out = relatent(&[
        "apply",
        dir.to_str().unwrap(),
        "--image",
        text.to_str().unwrap(),
        "--relation",
        "teleport",
        "--out",
        result.to_str().unwrap(),
    ]);
    assert_user_error(&out, "unknown relation 'teleport'");
    let out = relatent(&[
        "apply",
        tmp.path().join("norun").to_str().unwrap(),
        "--image",
        text.to_str().unwrap(),
        "--relation",
        "move_up",
        "--out",
        result.to_str().unwrap(),
    ]);
    assert_user_error(&out, "norun");
    let out = relatent(&[
        "apply",
        dir.to_str().unwrap(),
        "--image",
        text.to_str().unwrap(),
        "--relation",
        "move_up",
        "--out",
        result.to_str().unwrap(),
        "--alpha",
        "2",
    ]);
    assert_user_error(&out, "--alpha");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1, "nothing but the input file");
}

#[test]
fn shapes3d_runs_end_to_end_in_colour() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, out) = common::run_tiny("shapes3d", tmp.path());
    let eval = common::read_json(&dir.join("eval.json"));
    assert_eq!(eval["task"], "shapes3d");
    assert_eq!(eval["relational"].as_array().unwrap().len(), 18);
    // 120 components × τ = 4; images whose object shares the floor's or the walls' hue
    // (about a fifth) cannot be repainted.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let coverage = stderr
        .lines()
        .find_map(|l| l.strip_prefix("relatent: the augmentation makes views of "))
        .expect("the repaint's coverage is reported");
    let numbers: Vec<usize> = coverage.split(' ').filter_map(|w| w.parse().ok()).collect();
    assert_eq!(numbers[1], 480, "{coverage}");
    assert!((330..450).contains(&numbers[0]), "{coverage}");
    let means = image::open(dir.join("figures/prior_means.png")).unwrap().to_rgb8();
    assert!(
        means.pixels().any(|p| p[0] != p[1] || p[1] != p[2]),
        "decoded prior means are in colour"
    );
}

/// A grey 45×45 image with a bar, standing in for a handwritten symbol.
fn bar_image(dir: &Path, name: &str, vertical: bool) -> std::path::PathBuf {
    let path = dir.join(name);
    image::GrayImage::from_fn(45, 45, |x, y| {
        let (along, across) = if vertical { (y, x) } else { (x, y) };
        image::Luma([if (10..35).contains(&along) && (20..25).contains(&across) { 255 } else { 0 }])
    })
    .save(&path)
    .unwrap();
    path
}

#[test]
fn hwf_runs_end_to_end_with_binary_and_two_output_relations() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = common::run_tiny("hwf", tmp.path());
    let eval = common::read_json(&dir.join("eval.json"));
    let config = tmp.path().join("tiny.toml");
    assert_eq!(eval["relational"].as_array().unwrap().len(), 18);
    assert_eq!(eval["relational_images"].as_array().unwrap().len(), 18);
    assert!(eval.get("disentanglement").is_none(), "one kept factor: nothing to disentangle");
    assert!(
        png_size(&dir.join("figures/relations.png")).1 > 9 * 128,
        "three examples per relation"
    );

    // `apply` with a further operand and an operator image, and without the operand.
    let a = bar_image(tmp.path(), "a.png", true);
    let op = bar_image(tmp.path(), "op.png", false);
    let result = tmp.path().join("out.png");
    let run = dir.to_str().unwrap();
    let (a, op, res) = (a.to_str().unwrap(), op.to_str().unwrap(), result.to_str().unwrap());
    let out = relatent(&[
        "apply",
        run,
        "--image",
        a,
        "--relation",
        "sum,mul",
        "--operand",
        a,
        "--operand",
        a,
        "--operator",
        op,
        "--operator",
        op,
        "--out",
        res,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stages = |what: &str| stdout.lines().filter(|l| l.contains(what)).count();
    assert_eq!((stages("component"), stages("image reads as symbol=")), (3, 3), "{stdout}");
    assert_eq!(stages("nuisances"), 0, "a thousand writers are no nuisance to probe: {stdout}");
    assert_eq!(png_size(&result), (45, 45));
    let out = relatent(&["apply", run, "--image", a, "--relation", "sum", "--out", res]);
    assert_user_error(&out, "1 further operand image(s)");

    // The two-output variants: sign and magnitude, tens and units.
    let dir2 = tmp.path().join("run2");
    let out = relatent(&[
        "train",
        "--task",
        "hwf",
        "--relations",
        "sub_sign_magnitude,sum_tens_units",
        "--config",
        config.to_str().unwrap(),
        "--out",
        dir2.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = relatent(&[
        "apply",
        dir2.to_str().unwrap(),
        "--image",
        a,
        "--relation",
        "sum_tens_units",
        "--operand",
        a,
        "--out",
        res,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("sum_tens_units [1/2]") && stdout.contains("sum_tens_units [2/2]"),
        "{stdout}"
    );
}

#[test]
fn eval_scores_out_of_distribution_sources_against_the_test_split() {
    let dir = tiny_run();
    let tmp = tempfile::tempdir().unwrap();
    let faces = tmp.path().join("faces");
    std::fs::create_dir_all(faces.join("more")).unwrap();
    for (i, side) in [20u32, 33, 64].iter().enumerate() {
        image::RgbImage::from_fn(*side, *side, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 5) as u8, 90])
        })
        .save(faces.join(format!("{i}.png")))
        .unwrap();
    }
    image::GrayImage::new(10, 10).save(faces.join("more/grey.png")).unwrap();
    let out = relatent(&[
        "eval",
        dir.to_str().unwrap(),
        "--ood",
        "noise",
        "--ood",
        faces.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ood = eval["ood"].as_array().unwrap();
    assert_eq!(ood.len(), 2);
    assert_eq!((ood[0]["source"].as_str(), ood[0]["images"].as_u64()), (Some("noise"), Some(1000)));
    assert_eq!(ood[1]["images"], 4, "every image under the folder, any size and channels");
    for o in ood {
        assert!(o["auroc"].as_f64().is_some_and(|a| (0.0..=1.0).contains(&a)), "{o}");
        assert_eq!(o["rejected"].as_array().unwrap().len(), 6);
        assert_eq!(o["candidates"].as_object().unwrap().len(), 5);
    }
    let csv = std::fs::read_to_string(dir.join("ood-scores.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "source,file,score");
    let test_rows = rows.iter().filter(|r| r.starts_with("test,")).count();
    assert_eq!(test_rows as u64, eval["test_images"].as_u64().unwrap());
    assert_eq!(rows.len(), 1 + test_rows + 1000 + 4);
    assert!(rows.iter().any(|r| r.contains(",more/grey.png,")));
    let out = relatent(&[
        "eval",
        dir.to_str().unwrap(),
        "--ood",
        tmp.path().join("none").to_str().unwrap(),
    ]);
    assert_user_error(&out, "neither `noise` nor a folder of images");
}
