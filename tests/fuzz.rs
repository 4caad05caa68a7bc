//! Seeded mutation tests of every reader: truncations, bit flips and byte insertions of a
//! valid file must each end in `Ok` or relatent's typed error — never a panic, an abort or an
//! allocation the file's size does not justify (the readers check claimed sizes first).

mod common;

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use common::npz::{npy_bytes, write_dsprites_npz};
use relatent::config::{Config, Overrides};
use relatent::data::FactorDataset;
use relatent::data::dsprites::DspritesNpz;
use relatent::data::folder::{FolderDataset, FolderOptions, read_labels};
use relatent::data::hwf_files::HwfFiles;
use relatent::data::inspect::inspect;
use relatent::data::shapes3d_h5::Shapes3dH5;
use relatent::eval::metrics::read_representation;
use relatent::train::checkpoint::Checkpoint;

/// Mutants of `valid`, drawn from `seed`: a truncation, 1–8 flipped bits, or 1–16 inserted
/// bytes, in turn.
fn mutants(valid: &[u8], count: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|i| {
            let mut bytes = valid.to_vec();
            match i % 3 {
                0 => bytes.truncate(rng.random_range(0..valid.len())),
                1 => {
                    for _ in 0..rng.random_range(1..=8) {
                        let at = rng.random_range(0..bytes.len());
                        bytes[at] ^= 1 << rng.random_range(0..8);
                    }
                }
                _ => {
                    let at = rng.random_range(0..=bytes.len());
                    let junk: Vec<u8> =
                        (0..rng.random_range(1..=16)).map(|_| rng.random()).collect();
                    bytes.splice(at..at, junk);
                }
            }
            bytes
        })
        .collect()
}

/// Writes every mutant of the file at `path` over it and calls `read`; counts the mutants
/// read without error. The valid file is put back at the end.
fn fuzz(path: &Path, count: usize, seed: u64, mut read: impl FnMut(&Path) -> bool) -> usize {
    let valid = std::fs::read(path).unwrap();
    assert!(read(path), "the valid file must read");
    let accepted = mutants(&valid, count, seed)
        .into_iter()
        .filter(|bytes| {
            std::fs::write(path, bytes).unwrap();
            read(path)
        })
        .count();
    std::fs::write(path, valid).unwrap();
    accepted
}

#[test]
fn npz_archives_and_npy_arrays() {
    let tmp = tempfile::tempdir().unwrap();
    let npz = tmp.path().join("d.npz");
    write_dsprites_npz(&npz, &[0, 33, 1234, 9999, 700_000]).unwrap();
    // A mutant may still read (a flip in a member never read, such as the pickled metadata),
    // but never as other images or labels: the members read are checked against their CRCs.
    let content = |d: &DspritesNpz| {
        let mut pixels = vec![0.0; 64 * 64];
        (0..d.len())
            .map(|i| {
                (d.factor_classes(i), {
                    d.render(i, &mut pixels);
                    pixels.clone()
                })
            })
            .collect::<Vec<_>>()
    };
    let valid = content(&DspritesNpz::open(&npz, |_| true, None).unwrap());
    fuzz(&npz, 1500, 1, |p| match DspritesNpz::open(p, |_| true, None) {
        Ok(d) => {
            assert_eq!(content(&d), valid, "a corrupt archive read as other data");
            inspect(p).is_ok()
        }
        Err(_) => false,
    });

    let codes = tmp.path().join("codes.npy");
    let factors = tmp.path().join("factors.npy");
    let values: Vec<u8> = (0..30).flat_map(|i| (i as f32 * 0.1).to_le_bytes()).collect();
    std::fs::write(&codes, npy_bytes("<f4", &[10, 3], &values)).unwrap();
    let labels: Vec<u8> = (0..20i64).flat_map(|i| (i % 3).to_le_bytes()).collect();
    std::fs::write(&factors, npy_bytes("<i8", &[10, 2], &labels)).unwrap();
    fuzz(&codes, 1000, 2, |p| read_representation(p, &factors).is_ok());
    fuzz(&factors, 1000, 3, |p| read_representation(&codes, p).is_ok());
}

#[test]
fn hdf5_files() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("3dshapes.h5");
    let (images, labels) = common::h5::official_rows(&[0, 777, 4321]);
    common::h5::write_h5(&path, &images, &labels, true);
    let mut pixels = vec![0.0; 3 * 64 * 64];
    fuzz(&path, 900, 4, |p| {
        let Ok(file) = Shapes3dH5::open(p, |_| true, None) else { return false };
        (0..file.len()).for_each(|i| file.render(i, &mut pixels));
        file.read_error().is_none()
    });
}

#[test]
fn hwf_releases_folders_configs_and_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let release = tmp.path().join("HWF");
    common::hwf::write_release(&release);
    fuzz(&release.join("expr_train.json"), 600, 5, |_| HwfFiles::open(&release).is_ok());

    let folder = tmp.path().join("folder");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..4 {
        image::GrayImage::from_fn(12, 12, |x, y| image::Luma([((x + y * i) * 9) as u8]))
            .save(folder.join(format!("{i}.png")))
            .unwrap();
    }
    std::fs::write(
        folder.join("factors.csv"),
        "file,digit,kind\n0.png,0,a\n1.png,1,\"b, c\"\n2.png,0,a\n3.png,1,a\n",
    )
    .unwrap();
    fuzz(&folder.join("factors.csv"), 1000, 6, |p| {
        read_labels(p.parent().unwrap(), &Default::default()).is_ok()
    });
    fuzz(&folder.join("2.png"), 600, 7, |p| {
        FolderDataset::open(p.parent().unwrap(), &FolderOptions::default()).is_ok()
    });

    let config = common::write(
        tmp.path(),
        "c.toml",
        &format!("{}[[relation]]\nname = \"r\"\nfactor = \"x\"\nshift = 1\n", common::TINY),
    );
    fuzz(&config, 1500, 8, |p| Config::resolve(Some(p), None, None, &Overrides::default()).is_ok());

    let checkpoint = tmp.path().join("checkpoint.bin");
    let mut c = Checkpoint::new(&checkpoint);
    c.add_json("state", &serde_json::json!({"step": 3, "seconds": 1.0, "backend": "flex"}));
    c.add("weights", (0..2000u32).flat_map(|v| v.to_le_bytes()).collect());
    c.write().unwrap();
    let accepted = fuzz(&checkpoint, 1500, 9, |p| Checkpoint::read(p).is_ok());
    assert_eq!(accepted, 0, "every corrupt checkpoint is refused");
}
