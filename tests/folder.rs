//! Folder datasets: the renderer's output read back, a user's own RGB folder trained end to
//! end with declared relations, and every kind of bad input.

mod common;

use std::path::{Path, PathBuf};

use common::{TINY, assert_user_error, read_json, relatent, write};

const COLOURS: [(&str, [u8; 3]); 3] =
    [("red", [230, 40, 40]), ("green", [40, 200, 60]), ("blue", [50, 60, 230])];

/// A 32×32 RGB folder: a square of one of three colours and three sizes, at one of four
/// places (a nuisance), ten images of each colour and size.
fn colour_folder(dir: &Path) -> PathBuf {
    let root = dir.join("squares");
    std::fs::create_dir_all(root.join("img")).unwrap();
    let mut csv = String::from("file,colour,size,place\n");
    for n in 0..90 {
        let (colour, size, place) = (n % 3, (n / 3) % 3, (n / 9) % 4);
        let (half, (cx, cy)) =
            (3 + 3 * size as u32, [(10, 10), (21, 10), (10, 21), (21, 21)][place]);
        let rgb = COLOURS[colour].1;
        let image = image::RgbImage::from_fn(32, 32, |x, y| {
            let inside = x.abs_diff(cx) <= half && y.abs_diff(cy) <= half;
            image::Rgb(if inside { rgb } else { [0, 0, 0] })
        });
        let file = format!("img/{n:03}.png");
        image.save(root.join(&file)).unwrap();
        csv.push_str(&format!("{file},{},{},{place}\n", COLOURS[colour].0, [2, 4, 6][size]));
    }
    std::fs::write(root.join("factors.csv"), csv).unwrap();
    root
}

const DECLARED: &str = r#"
[folder]
kept = ["colour", "size"]
[folder.classes]
colour = ["red", "green", "blue"]

[[relation]]
name = "next_colour"
factor = "colour"
shift = 1
wrap = true

[[relation]]
name = "bigger"
factor = "size"
operands = 1
expr = "a + 2"
"#;

#[test]
fn rendered_images_read_back_as_a_folder_with_the_same_factors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sprites");
    let out =
        relatent(&["data", "render", "dsprites", "--out", dir.to_str().unwrap(), "--count", "60"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = relatent(&["data", "inspect", dir.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((json["format"].as_str(), json["images"].as_u64()), (Some("folder"), Some(60)));
    assert_eq!(json["image_shape"], serde_json::json!([1, 64, 64]));
    let csv = std::fs::read_to_string(dir.join("factors.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    for (i, name) in ["shape", "scale", "orientation", "pos_x", "pos_y"].iter().enumerate() {
        let mut distinct: Vec<&str> = rows.iter().map(|r| r[i + 1]).collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(json["factors"][name].as_u64(), Some(distinct.len() as u64), "{name}");
        let counted: u64 =
            json["classes"][name].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(counted, 60, "{name}");
    }
    let components: u64 =
        json["component_images"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(components, 60);
}

#[test]
fn a_users_rgb_folder_trains_evaluates_draws_and_applies() {
    let tmp = tempfile::tempdir().unwrap();
    let data = colour_folder(tmp.path());
    let config = write(
        tmp.path(),
        "squares.toml",
        &format!("{}{DECLARED}", TINY.replace("tau = 4", "tau = 3")),
    );
    let run = tmp.path().join("run");
    let out = relatent(&[
        "run",
        "--data",
        data.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let eval = read_json(&run.join("eval.json"));
    assert_eq!(eval["task"], "folder");
    assert_eq!(eval["classification"].as_array().unwrap().len(), 6);
    assert_eq!(eval["relational_images"].as_array().unwrap().len(), 18);
    let baseline = &eval["baseline"];
    assert_eq!(baseline["train_images"], 27, "τ = 3 labelled images of each of 9 components");
    assert!(baseline["accuracy"].as_f64().is_some_and(|a| (0.0..=1.0).contains(&a)), "{baseline}");
    assert!(eval["factor_accuracy"]["colour"].is_number() && eval["disentanglement"].is_object());
    let resolved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        resolved.contains("task = \"folder\"") && resolved.contains("[[relation]]"),
        "{resolved}"
    );
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("raw pixels"), "{report}");
    let means = image::open(run.join("figures/prior_means.png")).unwrap().to_rgb8();
    assert!(means.width() >= 3 * 128, "a row per colour, a column per size");

    let input = data.join("img/000.png");
    let moved = tmp.path().join("moved.png");
    let out = relatent(&[
        "apply",
        run.to_str().unwrap(),
        "--image",
        input.to_str().unwrap(),
        "--relation",
        "next_colour,bigger",
        "--out",
        moved.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stages = |what: &str| stdout.lines().filter(|l| l.contains(what)).count();
    assert_eq!((stages("component"), stages("image reads as colour=")), (3, 3), "{stdout}");
    assert_eq!(stages("nuisances place"), 3, "the folder's own nuisance, probed: {stdout}");
    assert_eq!(image::open(&moved).unwrap().width(), 32);
}

/// A folder of grey 16×16 images: `n` rows, image i holding value i % 2 in factor `digit`.
fn grey_folder(dir: &Path, name: &str, rows: usize) -> PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(&root).unwrap();
    let mut csv = String::from("file,digit,writer\n");
    for i in 0..rows {
        image::GrayImage::from_fn(16, 16, |x, _| {
            image::Luma([if x as usize == i % 16 { 255 } else { 0 }])
        })
        .save(root.join(format!("{i}.png")))
        .unwrap();
        csv.push_str(&format!("{i}.png,{},{}\n", i % 2, i % 5));
    }
    std::fs::write(root.join("factors.csv"), csv).unwrap();
    root
}

/// `relatent train` on `data` with `extra` config: a user error naming `needle`, and no run
/// directory left behind.
fn refused(tmp: &Path, data: &Path, extra: &str, needle: &str) {
    let config = write(tmp, "bad.toml", &format!("{TINY}{extra}"));
    let run = tmp.join("never");
    let out = relatent(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    assert_user_error(&out, needle);
    assert!(!run.exists(), "{needle}: a run directory was left");
}

#[test]
fn bad_folders_and_declarations_get_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let good = grey_folder(t, "good", 40);
    let relation = |body: &str| format!("[[relation]]\nname = \"r\"\n{body}\n");
    refused(t, &good, "[folder]\nkept = [\"colour\"]", "'colour' is not a column");
    refused(
        t,
        &good,
        &format!("[folder]\nkept = [\"digit\"]\n{}", relation("factor = \"writer\"\nshift = 1")),
        "'writer' is a nuisance",
    );
    refused(
        t,
        &good,
        &format!("[folder]\nkept = [\"digit\"]\n{}", relation("factor = \"size\"\nshift = 1")),
        "'size' is not a factor",
    );
    refused(
        t,
        &good,
        &format!(
            "[folder]\nkept = [\"digit\"]\n{}",
            relation("factor = \"digit\"\nexpr = \"(a +\"")
        ),
        "does not parse",
    );
    refused(
        t,
        &good,
        &format!(
            "[folder]\nkept = [\"digit\"]\n{}",
            relation("factor = \"digit\"\noperands = 2\nexpr = \"a / b\"")
        ),
        "fails at (0, 0)",
    );
    refused(
        t,
        &good,
        &format!(
            "[folder]\nkept = [\"digit\"]\n{}",
            relation("factor = \"digit\"\ntable = { 0 = 7 }")
        ),
        "'7' is not a class of 'digit'",
    );
    refused(t, &good, "[folder]\nkept = [\"digit\", \"writer\"]\n", "has only");

    let broken = |name: &str, edit: &dyn Fn(&Path)| {
        let dir = grey_folder(t, name, 40);
        edit(&dir);
        dir
    };
    let csv = |dir: &Path, text: &str| std::fs::write(dir.join("factors.csv"), text).unwrap();
    let cases: Vec<(PathBuf, &str)> = vec![
        (broken("no-csv", &|d| std::fs::remove_file(d.join("factors.csv")).unwrap()), "no-csv"),
        (broken("empty-csv", &|d| csv(d, "")), "first column must be 'file'"),
        (
            broken("missing-image", &|d| std::fs::remove_file(d.join("3.png")).unwrap()),
            "line 5: image '3.png' is missing",
        ),
        (
            broken("corrupt-image", &|d| std::fs::write(d.join("4.png"), "not a png").unwrap()),
            "4.png",
        ),
        (
            broken("short-row", &|d| csv(d, "file,digit,writer\n0.png,1\n")),
            "line 2: 2 fields, expected 3",
        ),
        (
            broken("odd-size", &|d| image::GrayImage::new(20, 16).save(d.join("5.png")).unwrap()),
            "5.png: is 20×16 but 0.png is 16×16",
        ),
    ];
    for (dir, needle) in cases {
        refused(t, &dir, "", needle);
    }
    let out = relatent(&["data", "inspect", t.join("missing-image").to_str().unwrap()]);
    assert_user_error(&out, "image '3.png' is missing");
    let resized =
        write(t, "resized.toml", &format!("{TINY}[folder]\nimage_size = 32\nkept = [\"digit\"]\n"));
    let out = relatent(&[
        "train",
        "--data",
        t.join("odd-size").to_str().unwrap(),
        "--config",
        resized.to_str().unwrap(),
        "--out",
        t.join("ok").to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "image_size resizes every image: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
