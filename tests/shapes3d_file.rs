//! The official `3dshapes.h5` layout, written here by a pure-Rust HDF5 writer in both layouts
//! the reader must handle (contiguous, and chunked + deflate like an h5py-compressed copy).

mod common;

use std::path::Path;

use common::h5::{official_rows, write_h5};
use common::{assert_user_error, relatent};
use relatent::data::FactorDataset;
use relatent::data::shapes3d::{Shapes3dRenderer, grid_classes};
use relatent::data::shapes3d_h5::Shapes3dH5;
use relatent::tasks::TaskData;

/// Grid indices spread over every factor.
fn sample_indices() -> Vec<usize> {
    (0..60).map(|i| (i * 7919 + 13) % 480_000).collect()
}

#[test]
fn both_layouts_read_back_the_renderer_images_and_factors() {
    let tmp = tempfile::tempdir().unwrap();
    let indices = sample_indices();
    let (images, labels) = official_rows(&indices);
    for chunked in [false, true] {
        let path = tmp.path().join(format!("3dshapes-{chunked}.h5"));
        write_h5(&path, &images, &labels, chunked);
        let file = Shapes3dH5::open(&path, |_| true, None).unwrap();
        assert_eq!(file.len(), indices.len());
        let mut got = vec![0.0f32; 3 * 64 * 64];
        let mut want = vec![0.0f32; 3 * 64 * 64];
        for (row, &g) in indices.iter().enumerate() {
            assert_eq!(file.factor_classes(row), grid_classes(g), "row {row}");
            file.render(row, &mut got);
            Shapes3dRenderer.render(g, &mut want);
            let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(
                worst <= 0.5 / 255.0 + 1e-6,
                "row {row}: off by {worst} (only u8 rounding allowed)"
            );
        }
        // The task keeps 3 of the 8 scales.
        let task = TaskData::open("shapes3d", Some(&path)).unwrap();
        let kept = indices.iter().filter(|&&g| [0, 4, 7].contains(&grid_classes(g)[3])).count();
        assert_eq!(task.len(), kept);
    }
}

#[test]
fn inspect_and_export_read_the_h5() {
    let tmp = tempfile::tempdir().unwrap();
    let (images, labels) = official_rows(&sample_indices());
    let path = tmp.path().join("3dshapes.h5");
    write_h5(&path, &images, &labels, true);
    let out = relatent(&["data", "inspect", path.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["format"], "shapes3d-h5");
    assert_eq!(json["images"], 60);
    assert_eq!(json["image_shape"], serde_json::json!([3, 64, 64]));
    assert_eq!(json["factors"].as_object().unwrap().len(), 6);
    let dir = tmp.path().join("export");
    let out = relatent(&[
        "data",
        "export",
        path.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
        "--count",
        "4",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let first = image::open(dir.join("000000.png")).unwrap().to_rgb8();
    assert_eq!(first.as_raw()[..], images[..64 * 64 * 3], "exported in file order, bit-exact");
    assert_eq!(std::fs::read_to_string(dir.join("factors.csv")).unwrap().lines().count(), 5);
}

#[test]
fn bad_h5_files_get_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (images, labels) = official_rows(&sample_indices()[..4]);
    type WriteFile<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, WriteFile, &str)> = vec![
        (
            "no-labels.h5",
            Box::new(|p: &Path| {
                let mut b = hdf5_pure::FileBuilder::new();
                b.create_dataset("images").with_u8_data(&images).with_shape(&[4, 64, 64, 3]);
                b.write(p).unwrap();
            }),
            "'labels'",
        ),
        (
            "small-images.h5",
            Box::new(|p: &Path| {
                let mut b = hdf5_pure::FileBuilder::new();
                b.create_dataset("images")
                    .with_u8_data(&images[..4 * 32 * 32 * 3])
                    .with_shape(&[4, 32, 32, 3]);
                b.create_dataset("labels").with_f64_data(&labels).with_shape(&[4, 6]);
                b.write(p).unwrap();
            }),
            "N×64×64×3",
        ),
        (
            "off-grid.h5",
            Box::new(|p: &Path| {
                let mut bad = labels.clone();
                bad[6 + 3] = 2.0; // row 1's scale
                write_h5(p, &images, &bad, false);
            }),
            "row 1: scale",
        ),
        (
            "truncated.h5",
            Box::new(|p: &Path| {
                write_h5(p, &images, &labels, false);
                let bytes = std::fs::read(p).unwrap();
                std::fs::write(p, &bytes[..200]).unwrap();
            }),
            "truncated.h5",
        ),
    ];
    for (name, write, needle) in cases {
        let path = tmp.path().join(name);
        write(&path);
        assert_user_error(&relatent(&["data", "inspect", path.to_str().unwrap()]), needle);
        let out_dir = tmp.path().join(format!("run-{name}"));
        assert_user_error(
            &relatent(&[
                "run",
                "--task",
                "shapes3d",
                "--data",
                path.to_str().unwrap(),
                "--out",
                out_dir.to_str().unwrap(),
            ]),
            needle,
        );
        assert!(!out_dir.exists(), "{name}: nothing written");
    }
}
