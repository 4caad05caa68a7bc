//! The official dSprites `.npz` layout: reading, inspecting, exporting, training on it.

mod common;

use common::npz::{npy_bytes, pickled_metadata, write_dsprites_npz, write_npz};
use common::{assert_user_error, relatent};
use relatent::data::FactorDataset;
use relatent::data::dsprites::{DspritesRenderer, grid_classes};
use relatent::data::npz::NpzArchive;
use relatent::tasks::TaskData;

/// Grid indices spread over every factor, including ones outside the authors' subset.
fn sample_indices() -> Vec<usize> {
    (0..200).map(|i| (i * 3687 + 11) % 737_280).collect()
}

#[test]
fn npz_images_and_factors_match_the_renderer() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("dsprites.npz");
    let indices = sample_indices();
    write_dsprites_npz(&path, &indices).unwrap();
    let data = TaskData::open("dsprites-full", Some(&path)).unwrap();
    assert_eq!(data.len(), indices.len());
    let mut a = vec![0.0; 4096];
    let mut b = vec![0.0; 4096];
    for (row, &grid) in indices.iter().enumerate() {
        assert_eq!(data.dataset.factor_classes(row), grid_classes(grid));
        data.dataset.render(row, &mut a);
        DspritesRenderer.render(grid, &mut b);
        assert_eq!(a, b);
    }
    let subset = TaskData::open("dsprites", Some(&path)).unwrap();
    let expected = indices.iter().filter(|&&g| subset.task.contains(&grid_classes(g))).count();
    assert_eq!(subset.len(), expected, "only the authors' subset is kept");
}

#[test]
fn inspect_reports_the_contract_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("d.npz");
    write_dsprites_npz(&path, &sample_indices()).unwrap();
    let out = relatent(&["data", "inspect", path.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["format"], "dsprites-npz");
    assert_eq!(json["images"], 200);
    assert_eq!(json["image_shape"], serde_json::json!([1, 64, 64]));
    assert_eq!(json["factors"]["shape"], 3);
    assert!(json["factors"]["pos_y"].as_u64().unwrap() > 1);
}

#[test]
fn export_writes_the_first_images_in_file_order() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("d.npz");
    let indices = sample_indices();
    write_dsprites_npz(&path, &indices).unwrap();
    let out_dir = tmp.path().join("png");
    let out = relatent(&[
        "data",
        "export",
        path.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--count",
        "3",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = std::fs::read_to_string(out_dir.join("factors.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 3);
    let c = grid_classes(indices[2]);
    assert_eq!(rows[2], format!("000002.png,{},{},{},{},{}", c[0], c[1], c[2], c[3], c[4]));
}

#[test]
fn wrong_shapes_and_truncated_files_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("wrong.npz");
    write_npz(
        &path,
        &[
            ("imgs", npy_bytes("|u1", &[1, 32, 32], &[0; 1024])),
            ("latents_classes", npy_bytes("<i8", &[1, 6], &[0; 48])),
        ],
    )
    .unwrap();
    let out = relatent(&[
        "run",
        "--data",
        path.to_str().unwrap(),
        "--out",
        tmp.path().join("r").to_str().unwrap(),
    ]);
    assert_user_error(&out, "64×64");

    let full = tmp.path().join("full.npz");
    write_dsprites_npz(&full, &sample_indices()).unwrap();
    let bytes = std::fs::read(&full).unwrap();
    let cut = tmp.path().join("cut.npz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = relatent(&["data", "inspect", cut.to_str().unwrap()]);
    assert_user_error(&out, "cut.npz");
    assert!(!tmp.path().join("r").exists());
}

#[test]
fn reads_integer_arrays_of_any_width_and_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npz");
    let i64s: Vec<u8> = [-1i64, 2, 3, 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    let i16s: Vec<u8> = [-300i16, 7].iter().flat_map(|v| v.to_be_bytes()).collect();
    write_npz(
        &path,
        &[
            ("a", npy_bytes("<i8", &[2, 2], &i64s)),
            ("b", npy_bytes(">i2", &[2], &i16s)),
            ("img", npy_bytes("|u1", &[2, 3], &[1, 2, 3, 4, 5, 6])),
            ("metadata", pickled_metadata()),
        ],
    )
    .unwrap();
    let mut npz = NpzArchive::open(&path).unwrap();
    assert_eq!(npz.read_integers("a").unwrap(), (vec![2, 2], vec![-1, 2, 3, 4]));
    assert_eq!(npz.read_integers("b").unwrap(), (vec![2], vec![-300, 7]));
    {
        let mut rows = npz.array("img").unwrap();
        let mut row = [0u8; 3];
        rows.read_row(&mut row).unwrap();
        rows.read_row(&mut row).unwrap();
        assert_eq!(row, [4, 5, 6]);
        assert!(rows.read_row(&mut row).is_err());
    }
    let err = npz.array("missing").err().unwrap().to_string();
    assert!(err.contains("a.npz") && err.contains("missing"), "{err}");
}

#[test]
fn corrupt_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.npz");
    std::fs::write(&path, b"this is not a zip").unwrap();
    let err = NpzArchive::open(&path).err().unwrap().to_string();
    assert!(err.contains("bad.npz") && err.contains("not a valid"), "{err}");
    let err = NpzArchive::open(&dir.path().join("none.npz")).err().unwrap().to_string();
    assert!(err.contains("none.npz"), "{err}");
}
