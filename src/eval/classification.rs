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
    for (z, &t) in codes.chunks_exact(mixture.dim).zip(truth) {
        let (pred, _) = mixture.classify(z);
        let (p, t) = (task.component_classes(pred), task.component_classes(t));
        for (h, (a, b)) in hits.iter_mut().zip(p.iter().zip(&t)) {
            *h += (a == b) as usize;
        }
    }
    task.kept
        .iter()
        .zip(hits)
        .map(|(k, h)| (k.name.to_string(), h as f64 / truth.len().max(1) as f64))
        .collect()
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
}
