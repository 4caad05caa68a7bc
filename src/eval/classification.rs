//! Latent classification: the predicted component of a code is the most likely mixture
//! component; the α rule decides which codes are accepted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::prior::{AlphaRule, Mixture, argmax};
use crate::tasks::Task;

/// Accuracy among accepted codes and the accepted share, at one α.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClassificationRow {
    pub alpha: f64,
    /// None when no code is accepted.
    pub accuracy: Option<f64>,
    pub accepted_ratio: f64,
}

/// Scores codes (n×d) against their true components for every α.
pub fn classify_codes(
    mixture: &Mixture,
    codes: &[f32],
    truth: &[usize],
    rule: AlphaRule,
    alphas: &[f64],
) -> Vec<ClassificationRow> {
    let scored: Vec<(bool, f64)> = codes
        .chunks_exact(mixture.dim)
        .zip(truth)
        .map(|(z, &t)| {
            let ld = mixture.log_densities(z);
            (argmax(&ld) == t, rule.score(&ld))
        })
        .collect();
    alphas.iter().map(|&alpha| row_at(alpha, &scored)).collect()
}

/// One table row from (correct, α-score) pairs.
pub fn row_at(alpha: f64, scored: &[(bool, f64)]) -> ClassificationRow {
    let accepted: Vec<bool> =
        scored.iter().filter(|(_, s)| alpha <= 0.0 || *s >= alpha).map(|(c, _)| *c).collect();
    let correct = accepted.iter().filter(|&&c| c).count();
    ClassificationRow {
        alpha,
        accuracy: (!accepted.is_empty()).then(|| correct as f64 / accepted.len() as f64),
        accepted_ratio: accepted.len() as f64 / scored.len().max(1) as f64,
    }
}

/// Share of codes whose predicted component has the right class of each kept factor.
pub fn factor_accuracy(
    task: &Task,
    mixture: &Mixture,
    codes: &[f32],
    truth: &[usize],
) -> BTreeMap<String, f64> {
    let mut hits = vec![0usize; task.kept.len()];
    for right in kept_factor_hits(task, mixture, codes, truth) {
        for (h, r) in hits.iter_mut().zip(right) {
            *h += r as usize;
        }
    }
    task.kept
        .iter()
        .zip(hits)
        .map(|(k, h)| (k.name.to_string(), h as f64 / truth.len().max(1) as f64))
        .collect()
}

/// The same share for each kept factor by the value of the dataset factor its class is read
/// from (`values`: each code's dataset factor classes; None where no code has the value):
/// where a factor's misreads sit, such as the positions either side of a band's edge.
pub fn factor_accuracy_by_value(
    task: &Task,
    mixture: &Mixture,
    codes: &[f32],
    truth: &[usize],
    values: &[Vec<usize>],
) -> BTreeMap<String, Vec<Option<f64>>> {
    let mut counts: Vec<Vec<(usize, usize)>> =
        task.kept.iter().map(|k| vec![(0, 0); k.class_of.len()]).collect();
    for (right, v) in kept_factor_hits(task, mixture, codes, truth).zip(values) {
        for ((per_value, k), r) in counts.iter_mut().zip(&task.kept).zip(right) {
            let (hits, seen) = &mut per_value[v[k.factor]];
            (*hits, *seen) = (*hits + r as usize, *seen + 1);
        }
    }
    let share = |&(hits, seen): &(usize, usize)| (seen > 0).then(|| hits as f64 / seen as f64);
    task.kept
        .iter()
        .zip(counts)
        .map(|(k, per_value)| (k.name.to_string(), per_value.iter().map(share).collect()))
        .collect()
}

/// For each code, whether its predicted component has the right class of each kept factor.
fn kept_factor_hits<'a>(
    task: &'a Task,
    mixture: &'a Mixture,
    codes: &'a [f32],
    truth: &'a [usize],
) -> impl Iterator<Item = Vec<bool>> + 'a {
    codes.chunks_exact(mixture.dim).zip(truth).map(|(z, &t)| {
        let (pred, _) = mixture.classify(z);
        let (p, t) = (task.component_classes(pred), task.component_classes(t));
        p.iter().zip(&t).map(|(a, b)| a == b).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_count_accuracy_among_accepted() {
        let scored = [(true, 0.95), (false, 0.4), (true, 0.6), (false, 0.92)];
        assert_eq!(
            row_at(0.0, &scored),
            ClassificationRow { alpha: 0.0, accuracy: Some(0.5), accepted_ratio: 1.0 }
        );
        assert_eq!(
            row_at(0.5, &scored),
            ClassificationRow { alpha: 0.5, accuracy: Some(2.0 / 3.0), accepted_ratio: 0.75 }
        );
        assert_eq!(
            row_at(0.99, &scored),
            ClassificationRow { alpha: 0.99, accuracy: None, accepted_ratio: 0.0 }
        );
    }

    #[test]
    fn well_separated_codes_are_classified_right() {
        let m = Mixture {
            dim: 1,
            means: vec![vec![-5.0], vec![5.0]],
            cholesky: vec![vec![1.0], vec![1.0]],
            log_weight_ratios: Vec::new(),
        };
        let rows = classify_codes(
            &m,
            &[-4.0, 4.5, 0.1],
            &[0, 1, 0],
            AlphaRule::Posterior { temperature: 1.0 },
            &[0.0, 0.9],
        );
        assert_eq!(rows[0].accuracy, Some(2.0 / 3.0), "the code at 0.1 is closer to component 1");
        assert_eq!(rows[1].accepted_ratio, 2.0 / 3.0, "the code at 0.1 is not confident");
        assert_eq!(rows[1].accuracy, Some(1.0));
    }

    #[test]
    fn factor_accuracy_by_value_puts_each_misread_at_its_factor_value() {
        let task = crate::tasks::dsprites::task(false);
        let k = task.components();
        let m = Mixture {
            dim: 1,
            means: (0..k).map(|c| vec![10.0 * c as f64]).collect(),
            cholesky: vec![vec![1.0]; k],
            log_weight_ratios: Vec::new(),
        };
        // Squares at x positions 10 and 11, either side of the first band edge, and one at
        // 31; all three read as the component of position 11 (middle band, top, square).
        let at = |x: usize| vec![0, 2, 0, x, 0];
        let values = vec![at(10), at(11), at(31)];
        let truth: Vec<usize> = values.iter().map(|v| task.component_of(v)).collect();
        let codes = vec![10.0 * task.component_of(&at(11)) as f32; 3];
        let by = factor_accuracy_by_value(&task, &m, &codes, &truth, &values);
        assert_eq!(by["x"].len(), 32);
        assert_eq!((by["x"][10], by["x"][11], by["x"][31]), (Some(0.0), Some(1.0), Some(0.0)));
        assert!(by["x"].iter().enumerate().all(|(i, a)| a.is_some() == [10, 11, 31].contains(&i)));
        assert_eq!((by["shape"][0], by["shape"][1], by["y"][0]), (Some(1.0), None, Some(1.0)));
        let overall = factor_accuracy(&task, &m, &codes, &truth);
        assert_eq!((overall["x"], overall["shape"]), (1.0 / 3.0, 1.0));
    }
}
