//! Out-of-distribution scores (SPEC §6): how unlike the run's data an image is, and how well
//! that separates the test split from images of another kind (`eval --ood SOURCE`).
//!
//! Every image gets five candidate scores, higher meaning further out: one minus the α rule's
//! posterior confidence, the negated largest component log-density, one minus the χ²
//! typicality of the nearest component, the reconstruction error (BCE per image), and their
//! combination — the log-density and the reconstruction error each standardised by the test
//! split's mean and spread, then summed. [`CHOSEN`] is the one reports use; `eval.json` keeps
//! every candidate's AUROC so the choice can be checked on any pair of datasets.

use std::collections::BTreeMap;
use std::path::Path;

use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::backend::vector;
use crate::data::ImageShape;
use crate::data::images::{model_bytes, open_image};
use crate::inference::{AbsAeModel, INFERENCE_BATCH, Run};
use crate::prior::{AlphaRule, argmax};
use crate::rng::{Stream, stream};
use crate::tasks::paper::ALPHAS;
use crate::{Error, Result};

/// The candidate scores, in the order [`Scores`] holds them.
pub const CANDIDATES: [&str; 5] =
    ["posterior", "log_density", "typicality", "reconstruction", "combined"];
/// The score reports, `ood-scores.csv` and `apply` use (chosen by the AUROCs in the results
/// document: the strongest on every pair measured).
pub const CHOSEN: &str = "combined";
/// Noise images drawn for the `noise` source.
const NOISE_IMAGES: usize = 1000;
/// Step of the evaluation stream the noise images are drawn from.
const NOISE_STREAM: u64 = 4000;

/// The candidate scores of some images: `values[c][i]` is candidate `c` of image `i`.
#[derive(Clone, Debug, Default)]
pub struct Scores {
    pub values: [Vec<f64>; 5],
    /// Whether the α rule's score reaches each α of the paper's grid, per image.
    rule_scores: Vec<f64>,
}

/// Images from one OOD source.
pub struct Source {
    pub name: String,
    pub files: Vec<String>,
    /// C·H·W values in [0, 1] per image, in the run's layout.
    pub pixels: Vec<f32>,
}

/// One source's line of `eval.json`'s `ood`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OodReport {
    pub source: String,
    pub images: usize,
    /// AUROC of [`CHOSEN`] separating the test split (negatives) from the source (positives).
    pub auroc: f64,
    /// Share of the source's images the α rule rejects at each α.
    pub rejected: Vec<Rejected>,
    /// Every candidate's AUROC.
    pub candidates: BTreeMap<String, f64>,
}

/// Share rejected at one α.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Rejected {
    pub alpha: f64,
    pub ratio: f64,
}

/// Where the test split's scores lie, for reading one image's score (`eval.json`
/// `ood_reference`): the standardisation of the combined score and the chosen score's
/// quantiles.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OodReference {
    pub score: String,
    pub log_density_mean: f64,
    pub log_density_std: f64,
    pub reconstruction_mean: f64,
    pub reconstruction_std: f64,
    /// The chosen score's 95th and 99th percentiles over the test split.
    pub p95: f64,
    pub p99: f64,
}

/// The candidate scores of images given as pixels; the combined one is standardised by
/// `reference`.
pub fn score_pixels(
    run: &Run,
    model: &AbsAeModel,
    rule: AlphaRule,
    pixels: &[f32],
    reference: &OodReference,
) -> Scores {
    let len = run.ctx.data.image_len();
    let (mut codes, mut errors) = (Vec::new(), Vec::new());
    for chunk in pixels.chunks(INFERENCE_BATCH * len) {
        let (chunk_codes, logits) = run.encode_and_decode(chunk);
        codes.extend(chunk_codes);
        errors.extend(image_errors(&logits, chunk, len).into_iter().map(|(bce, _)| bce));
    }
    scores_of(model, rule, &codes, errors, Some(reference))
}

/// The candidate scores of images with these codes (row-major n×d) and reconstruction
/// errors; the combined one is standardised by `reference`, or (None) by these images' own
/// statistics, as for the test split itself.
pub fn scores_of(
    model: &AbsAeModel,
    rule: AlphaRule,
    codes: &[f32],
    errors: Vec<f64>,
    reference: Option<&OodReference>,
) -> Scores {
    let mut scores = Scores::default();
    for code in codes.chunks_exact(model.mixture.dim) {
        let ld = model.mixture.log_densities(code);
        let confidence = rule.score(&ld);
        scores.values[0].push(1.0 - confidence.min(1.0));
        scores.values[1].push(-ld[argmax(&ld)]);
        scores.values[2].push(1.0 - model.mixture.typicality(code));
        scores.rule_scores.push(confidence);
    }
    scores.values[3] = errors;
    let own;
    let reference = match reference {
        Some(r) => r,
        None => {
            own = reference_of(&scores);
            &own
        }
    };
    scores.values[4] = combine(&scores, reference);
    scores
}

/// Per image of `len` values, the reconstruction BCE Σ softplus(l) − x·l of `logits` against
/// `targets`, and the squared error Σ (σ(l) − x)² of the decoded pixels; in f64 per image, in
/// parallel over the images (one pass over memory instead of a tensor op per term).
pub fn image_errors(logits: &[f32], targets: &[f32], len: usize) -> Vec<(f64, f64)> {
    logits
        .par_chunks(len)
        .zip(targets.par_chunks(len))
        .map(|(l, x)| {
            let bce = vector::sum_of_chunk(l, x, |l, x| vector::softplus(l) - x * l);
            let squared = vector::sum_of_chunk(l, x, |l, x| (vector::sigmoid(l) - x).powi(2));
            (bce, squared)
        })
        .collect()
}

/// The standardised sum of the log-density and reconstruction scores.
fn combine(scores: &Scores, r: &OodReference) -> Vec<f64> {
    let (ld, rec) = (&scores.values[1], &scores.values[3]);
    ld.iter()
        .zip(rec)
        .map(|(l, e)| {
            (l - r.log_density_mean) / r.log_density_std
                + (e - r.reconstruction_mean) / r.reconstruction_std
        })
        .collect()
}

/// The reference of the test split's scores (before the combined score exists for them).
pub fn reference_of(test: &Scores) -> OodReference {
    let (lm, ls) = mean_std(&test.values[1]);
    let (rm, rs) = mean_std(&test.values[3]);
    let mut reference = OodReference {
        score: CHOSEN.into(),
        log_density_mean: lm,
        log_density_std: ls,
        reconstruction_mean: rm,
        reconstruction_std: rs,
        p95: 0.0,
        p99: 0.0,
    };
    let chosen = match CANDIDATES.iter().position(|&c| c == CHOSEN) {
        Some(4) => combine(test, &reference),
        Some(c) => test.values[c].clone(),
        None => unreachable!("CHOSEN is a candidate"),
    };
    reference.p95 = quantile(&chosen, 0.95);
    reference.p99 = quantile(&chosen, 0.99);
    reference
}

impl Scores {
    /// The chosen score of every image.
    pub fn chosen(&self) -> &[f64] {
        &self.values[CANDIDATES.iter().position(|&c| c == CHOSEN).expect("CHOSEN is a candidate")]
    }

    /// Number of images scored.
    pub fn len(&self) -> usize {
        self.values[0].len()
    }

    /// Whether no image was scored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `source`'s report against the test split's scores.
pub fn report(source: &Source, scores: &Scores, test: &Scores) -> OodReport {
    let candidates = CANDIDATES
        .iter()
        .enumerate()
        .map(|(c, name)| (name.to_string(), auroc(&test.values[c], &scores.values[c])))
        .collect();
    let rejected = ALPHAS
        .iter()
        .map(|&alpha| {
            let n = scores.rule_scores.iter().filter(|&&s| alpha > 0.0 && s < alpha).count();
            Rejected { alpha, ratio: n as f64 / scores.len().max(1) as f64 }
        })
        .collect();
    OodReport {
        source: source.name.clone(),
        images: scores.len(),
        auroc: auroc(test.chosen(), scores.chosen()),
        rejected,
        candidates,
    }
}

/// The images of a source: `noise` (uniform noise, drawn from the run's seed) or a folder of
/// PNG and JPEG images of any size and channel count, resized and converted to `shape`.
pub fn read_source(spec: &str, shape: ImageShape, seed: u64) -> Result<Source> {
    let len: usize = shape.iter().product();
    if spec == "noise" {
        let mut rng = stream(seed, Stream::Eval, NOISE_STREAM);
        let pixels = (0..NOISE_IMAGES * len).map(|_| rng.random_range(0.0f32..1.0)).collect();
        let files = (0..NOISE_IMAGES).map(|i| format!("noise-{i:04}")).collect();
        return Ok(Source { name: spec.into(), files, pixels });
    }
    let dir = Path::new(spec);
    let files = image_files(dir)?;
    use rayon::prelude::*;
    let decoded: Vec<Vec<u8>> = files
        .par_iter()
        .map(|f| open_image(&dir.join(f)).map(|image| model_bytes(&image, shape)))
        .collect::<Result<_>>()?;
    let pixels = decoded.concat().into_iter().map(|b| b as f32 / 255.0).collect();
    Ok(Source { name: spec.into(), files, pixels })
}

/// The PNG and JPEG files under `dir` (recursively), relative to it, sorted.
fn image_files(dir: &Path) -> Result<Vec<String>> {
    if !dir.is_dir() {
        return Err(Error::file(dir, "is neither `noise` nor a folder of images"));
    }
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| Error::file(&d, e))? {
            let path = entry.map_err(|e| Error::file(&d, e))?.path();
            let image = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()));
            if path.is_dir() {
                stack.push(path);
            } else if image {
                files
                    .push(path.strip_prefix(dir).expect("under dir").to_string_lossy().to_string());
            }
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::file(dir, "holds no PNG or JPEG image"));
    }
    Ok(files)
}

/// One row of `ood-scores.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredImage {
    pub source: String,
    pub file: String,
    pub score: f64,
}

/// The rows of `ood-scores.csv` for one source's images.
pub fn scored_images(source: &str, files: &[String], scores: &Scores) -> Vec<ScoredImage> {
    files
        .iter()
        .zip(scores.chosen())
        .map(|(f, &score)| ScoredImage { source: source.into(), file: f.clone(), score })
        .collect()
}

/// Writes `ood-scores.csv` (columns `source,file,score`) atomically.
pub fn write_scores(path: &Path, rows: &[ScoredImage]) -> Result<()> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let bad = |e: csv::Error| Error::file(path, e);
    writer.write_record(["source", "file", "score"]).map_err(bad)?;
    for r in rows {
        writer
            .write_record([r.source.as_str(), r.file.as_str(), &format!("{:.6}", r.score)])
            .map_err(bad)?;
    }
    let bytes = writer.into_inner().map_err(|e| Error::file(path, e))?;
    crate::data::images::write_atomic(path, &bytes)
}

/// Area under the ROC curve of scores separating `negatives` from `positives` (higher =
/// positive): the Mann–Whitney statistic, ties counting half.
pub fn auroc(negatives: &[f64], positives: &[f64]) -> f64 {
    if negatives.is_empty() || positives.is_empty() {
        return f64::NAN;
    }
    let mut all: Vec<(f64, bool)> =
        negatives.iter().map(|&s| (s, false)).chain(positives.iter().map(|&s| (s, true))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let j = (i..all.len()).find(|&j| all[j].0 != all[i].0).unwrap_or(all.len());
        let average_rank = (i + j + 1) as f64 / 2.0;
        rank_sum += all[i..j].iter().filter(|s| s.1).count() as f64 * average_rank;
        i = j;
    }
    let (n_pos, n_neg) = (positives.len() as f64, negatives.len() as f64);
    (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt().max(1e-12))
}

/// The `q` quantile (nearest rank) of `values`.
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
        .get(((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two images of two pixels: logits 0 (σ = ½) give ln 2 per pixel whatever the target and
    /// a squared error of ¼; a confident right logit costs almost nothing.
    #[test]
    fn image_errors_of_known_pixels() {
        let errors = image_errors(&[0.0, 0.0, 20.0, -20.0], &[0.0, 1.0, 1.0, 0.0], 2);
        let ln2 = std::f64::consts::LN_2;
        assert!((errors[0].0 - 2.0 * ln2).abs() < 1e-6 && (errors[0].1 - 0.5).abs() < 1e-7);
        assert!(errors[1].0 < 1e-7 && errors[1].1 < 1e-15, "{:?}", errors[1]);
    }

    #[test]
    fn auroc_is_the_chance_a_positive_outscores_a_negative() {
        assert_eq!(auroc(&[0.0, 1.0], &[2.0, 3.0]), 1.0);
        assert_eq!(auroc(&[2.0, 3.0], &[0.0, 1.0]), 0.0);
        assert_eq!(auroc(&[1.0, 1.0], &[1.0]), 0.5, "ties count half");
        // Pairs (pos, neg): 2>1 ✓, 2<3 ✗, 4>1 ✓, 4>3 ✓ → 3 of 4.
        assert_eq!(auroc(&[1.0, 3.0], &[2.0, 4.0]), 0.75);
        assert!(auroc(&[], &[1.0]).is_nan());
    }

    #[test]
    fn quantiles_and_spreads_by_hand() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!((quantile(&values, 0.95), quantile(&values, 0.99)), (95.0, 99.0));
        let (m, s) = mean_std(&[1.0, 3.0]);
        assert_eq!((m, s), (2.0, 1.0));
    }

    #[test]
    fn image_folders_are_listed_recursively_and_bad_sources_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for name in ["b.png", "a.JPG", "sub/c.png", "notes.txt"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        assert_eq!(image_files(dir.path()).unwrap(), ["a.JPG", "b.png", "sub/c.png"]);
        let err = read_source("nowhere", [1, 16, 16], 0).err().unwrap().to_string();
        assert!(err.contains("nowhere") && err.contains("neither `noise` nor a folder"), "{err}");
        let noise = read_source("noise", [1, 4, 4], 3).unwrap();
        assert_eq!((noise.files.len(), noise.pixels.len()), (NOISE_IMAGES, NOISE_IMAGES * 16));
        assert_eq!(noise.pixels, read_source("noise", [1, 4, 4], 3).unwrap().pixels, "seeded");
    }
}
