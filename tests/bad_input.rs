//! Bad input across the formats the official-file readers and the run directory meet: each
//! case exits 2 with one line naming the file or key, and leaves nothing behind.

mod common;

use std::path::{Path, PathBuf};

use common::npz::{npy_bytes, pickled_metadata, write_npz, write_npz_with};
use common::{TINY, assert_user_error, relatent, write};

/// A dSprites-layout archive of `n` images of `side`², dtype `imgs_dtype`, stored uncompressed.
fn dsprites_like(path: &Path, n: usize, side: usize, imgs_dtype: &str, item: usize) {
    let classes: Vec<u8> = (0..n)
        .flat_map(|i| [0i64, (i % 3) as i64, 0, 0, 5, 7])
        .flat_map(|v| v.to_le_bytes())
        .collect();
    write_npz_with(
        path,
        &[
            ("metadata", pickled_metadata()),
            ("imgs", npy_bytes(imgs_dtype, &[n, side, side], &vec![0u8; n * side * side * item])),
            ("latents_classes", npy_bytes("<i8", &[n, 6], &classes)),
        ],
        zip::CompressionMethod::Stored,
    )
    .unwrap();
}

/// Runs `args` with `{out}` replaced by a fresh path under `tmp`, and checks the error.
fn refused(tmp: &Path, args: &[&str], needle: &str) {
    let out_dir = tmp.join("out");
    let args: Vec<String> =
        args.iter().map(|a| a.replace("{out}", out_dir.to_str().unwrap())).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_user_error(&relatent(&args), needle);
    assert!(!out_dir.exists(), "{args:?} left {}", out_dir.display());
}

#[test]
fn official_files_that_do_not_read_correctly_are_refused_by_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let floats = t.join("floats.npz");
    dsprites_like(&floats, 4, 64, "<f4", 4);
    let small = t.join("small.npz");
    dsprites_like(&small, 4, 32, "|u1", 1);
    let path = |p: &PathBuf| p.to_str().unwrap().to_string();
    for (file, needle) in [(&floats, "64×64 uint8"), (&small, "64×64 uint8")] {
        refused(t, &["data", "inspect", &path(file)], needle);
        refused(t, &["data", "export", &path(file), "--out", "{out}"], needle);
        refused(
            t,
            &[
                "train",
                "--data",
                &path(file),
                "--config",
                &path(&write(t, "tiny.toml", TINY)),
                "--out",
                "{out}",
            ],
            needle,
        );
    }

    // A flipped image byte: the member no longer matches its CRC-32.
    let good = t.join("good.npz");
    dsprites_like(&good, 4, 64, "|u1", 1);
    let mut bytes = std::fs::read(&good).unwrap();
    let imgs_data = bytes.windows(6).position(|w| w == b"NUMPY\x01").and_then(|first| {
        bytes[first + 1..].windows(6).position(|w| w == b"NUMPY\x01").map(|p| first + 1 + p)
    });
    let at = imgs_data.unwrap() + 200;
    bytes[at] ^= 0xff;
    let corrupt = write_bytes(t, "crc.npz", &bytes);
    refused(t, &["data", "inspect", &path(&corrupt)], "checksum");
    refused(t, &["data", "export", &path(&corrupt), "--out", "{out}", "--count", "1"], "checksum");

    let truncated = write_bytes(t, "cut.npz", &std::fs::read(&good).unwrap()[..700]);
    refused(t, &["data", "inspect", &path(&truncated)], "cut.npz");
    let text = write(t, "notes.h5", "not hdf5 at all");
    refused(t, &["data", "inspect", &path(&text)], "notes.h5");
    let mut no_labels = Vec::new();
    write_npz(&t.join("nolabels.npz"), &[("imgs", npy_bytes("|u1", &[1, 64, 64], &[0; 4096]))])
        .unwrap();
    no_labels.push(t.join("nolabels.npz"));
    refused(t, &["data", "inspect", &path(&no_labels[0])], "'imgs' and 'latents_classes'");
}

fn write_bytes(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn configs_flags_and_run_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let cases = [
        ("task = 3", "task"),
        ("preset = \"fastest\"", "unknown preset 'fastest'"),
        ("[train]\nsteps = 0", "train.steps"),
        ("[train]\nwarmup_steps = 5000", "train.warmup_steps"),
        ("[rel]\nlabelled_fraction = 2.0", "rel.labelled_fraction"),
        ("[supervised]\nweight = -1.0", "supervised.weight"),
        ("[folder]\nkept = [\"x\"]", "folder"),
        ("[eval]\ndisentanglement_points = 2", "eval.disentanglement_points"),
        (
            "[[relation]]\nname = \"move_left\"\nfactor = \"x\"\nshift = 1",
            "the task already has a relation of this name",
        ),
        (
            "[[relation]]\nname = \"up2\"\nfactor = \"y\"\nshift = 2\noperands = 2",
            "operands and domain go with expr",
        ),
        ("this is = not toml", "invalid TOML"),
    ];
    for (text, needle) in cases {
        let config = write(t, "bad.toml", text);
        refused(t, &["train", "--config", config.to_str().unwrap(), "--out", "{out}"], needle);
    }
    refused(t, &["train", "--task", "folder", "--out", "{out}"], "needs data");
    refused(t, &["run", "--model", "gan", "--out", "{out}"], "unknown model 'gan'");
    refused(t, &["run", "--preset", "x", "--out", "{out}"], "unknown preset 'x'");
    refused(
        t,
        &["train", "--out", t.join("nothing").to_str().unwrap(), "--resume"],
        "no run to resume here",
    );
    refused(
        t,
        &["eval", t.join("nothing").to_str().unwrap(), "--alpha-rule", "max"],
        "unknown alpha rule 'max'",
    );

    // A run whose checkpoint was damaged after training.
    let config = write(t, "tiny.toml", TINY);
    let run = t.join("run");
    assert!(
        relatent(&[
            "train",
            "--config",
            config.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--quiet"
        ])
        .status
        .success()
    );
    let checkpoint = run.join("checkpoint.bin");
    let mut bytes = std::fs::read(&checkpoint).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x01;
    std::fs::write(&checkpoint, &bytes).unwrap();
    for command in ["eval", "figures"] {
        assert_user_error(&relatent(&[command, run.to_str().unwrap()]), "fails its checksum");
    }
    assert_user_error(
        &relatent(&["train", "--out", run.to_str().unwrap(), "--resume"]),
        "checkpoint.bin",
    );
    assert!(
        !run.join("eval.json").exists() && !run.join("figures").exists(),
        "nothing written from a corrupt checkpoint"
    );
    std::fs::write(&checkpoint, &bytes[..n / 2]).unwrap();
    assert_user_error(&relatent(&["eval", run.to_str().unwrap()]), "truncated");
}
