//! Mutual information gap (disentanglement_lib `mig.py`): each code dimension discretised
//! into 20 equal-width bins; for each factor, the gap between the two code dimensions with the
//! most mutual information (nats), over the factor's entropy; averaged over factors.

use std::ops::Range;

use super::{Representation, dense_labels};

/// Bins per code dimension.
pub const BINS: usize = 20;

/// MIG over the rows `rows`.
pub fn mig(rep: &Representation, rows: Range<usize>) -> f64 {
    let codes: Vec<Vec<usize>> =
        (0..rep.dim).map(|j| discretize(&rep.code_column(j, rows.clone()), BINS)).collect();
    let gaps: Vec<f64> = (0..rep.num_factors)
        .map(|k| {
            let (factor, _) = dense_labels(&rep.factor_column(k, rows.clone()));
            let mut info: Vec<f64> = codes.iter().map(|c| mutual_information(c, &factor)).collect();
            info.sort_by(|a, b| b.total_cmp(a));
            let second = info.get(1).copied().unwrap_or(0.0);
            (info[0] - second) / entropy(&factor)
        })
        .collect();
    gaps.iter().sum::<f64>() / gaps.len() as f64
}

/// `np.digitize(x, np.histogram(x, bins)[1][:-1])`: the number of left bin edges at or below
/// each value (1..=bins), with numpy's edges over [min, max] (or [v − 0.5, v + 0.5] when flat).
pub fn discretize(values: &[f64], bins: usize) -> Vec<usize> {
    let (mut lo, mut hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if lo == hi {
        (lo, hi) = (lo - 0.5, hi + 0.5);
    }
    // numpy.linspace: start + i·step, the last edge set to stop exactly.
    let step = (hi - lo) / bins as f64;
    let edges: Vec<f64> = (0..bins).map(|i| lo + i as f64 * step).collect();
    values.iter().map(|&v| edges.partition_point(|&e| e <= v)).collect()
}

/// Discrete mutual information in nats (scikit-learn's `mutual_info_score`).
pub fn mutual_information(a: &[usize], b: &[usize]) -> f64 {
    let (na, nb) = (a.iter().max().map_or(0, |m| m + 1), b.iter().max().map_or(0, |m| m + 1));
    let mut joint = vec![0usize; na * nb];
    for (&x, &y) in a.iter().zip(b) {
        joint[x * nb + y] += 1;
    }
    let n = a.len() as f64;
    let (mut pa, mut pb) = (vec![0.0; na], vec![0.0; nb]);
    for x in 0..na {
        for y in 0..nb {
            let c = joint[x * nb + y] as f64;
            pa[x] += c;
            pb[y] += c;
        }
    }
    let mut mi = 0.0;
    for x in 0..na {
        for y in 0..nb {
            let c = joint[x * nb + y] as f64;
            if c > 0.0 {
                mi += c / n * (c * n / (pa[x] * pb[y])).ln();
            }
        }
    }
    mi.max(0.0)
}

/// Entropy in nats of discrete labels.
pub fn entropy(labels: &[usize]) -> f64 {
    mutual_information(labels, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discretize_follows_numpy_digitize_of_histogram_edges() {
        // np.digitize([0, 1, 2, 3, 4], np.histogram([0, 1, 2, 3, 4], 4)[1][:-1]) = [1, 2, 3, 4, 4]
        assert_eq!(discretize(&[0.0, 1.0, 2.0, 3.0, 4.0], 4), vec![1, 2, 3, 4, 4]);
        assert_eq!(
            discretize(&[2.0, 2.0], 20),
            vec![11, 11],
            "flat: edges over [1.5, 2.5], as numpy"
        );
    }

    #[test]
    fn mutual_information_has_known_values() {
        let a = [0, 0, 1, 1];
        assert!((mutual_information(&a, &a) - 2f64.ln()).abs() < 1e-12);
        assert!(mutual_information(&a, &[0, 1, 0, 1]).abs() < 1e-12, "independent");
        // Known value: p(x,y) = [[.5, 0], [.25, .25]] → I = .5 ln 2 + 2·.25 ln(.25/(.5·.25)) + … = 0.2158
        let (x, y) = ([0, 0, 1, 1], [0, 0, 0, 1]);
        let want = 0.5 * (0.5f64 / (0.5 * 0.75)).ln()
            + 0.25 * (0.25f64 / (0.5 * 0.75)).ln()
            + 0.25 * (0.25f64 / (0.5 * 0.25)).ln();
        assert!((mutual_information(&x, &y) - want).abs() < 1e-12);
    }

    #[test]
    fn aligned_codes_score_one_and_duplicated_codes_zero() {
        // Two factors with 4 values each, all combinations, 3 repetitions.
        let rows: Vec<(i64, i64)> =
            (0..48).map(|i| ((i % 4) as i64, ((i / 4) % 4) as i64)).collect();
        let factors: Vec<i64> = rows.iter().flat_map(|&(a, b)| [a, b]).collect();
        let aligned: Vec<f64> = rows.iter().flat_map(|&(a, b)| [a as f64, b as f64]).collect();
        let rep = Representation::new(aligned, 2, factors.clone(), 2).unwrap();
        assert!((mig(&rep, 0..48) - 1.0).abs() < 1e-12);
        // Both code dimensions carry factor 0 only: no gap for it, no information on factor 1.
        let copies: Vec<f64> = rows.iter().flat_map(|&(a, _)| [a as f64, a as f64]).collect();
        let rep = Representation::new(copies, 2, factors, 2).unwrap();
        assert!(mig(&rep, 0..48).abs() < 1e-12);
    }
}
