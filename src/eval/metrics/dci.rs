//! DCI (disentanglement_lib `dci.py`): a gradient-boosted classifier per factor gives an
//! importance matrix R (codes × factors) and a test accuracy; disentanglement is
//! Σ_i ρ_i (1 − H_K(P_i·)) with P_i· code i's importances over the K factors and ρ_i its share of
//! all importance; completeness the same over codes for each factor (log base = number of
//! codes); informativeness the mean test accuracy. Entropies add 1e-11 to every entry, as
//! `scipy.stats.entropy(R + 1e-11)` does.

use rayon::prelude::*;

use super::gbt::{GradientBoosting, Samples};
use super::{Dci, Representation, dense_labels};

/// DCI with the first `train` rows fitting the classifiers and the rest testing them.
pub fn dci(rep: &Representation, train: usize) -> Dci {
    let n = rep.len();
    let x: Vec<f32> = rep.codes.iter().map(|&v| v as f32).collect();
    let (x_train, x_test) = x.split_at(train * rep.dim);
    let per_factor: Vec<(Vec<f64>, f64)> = (0..rep.num_factors)
        .into_par_iter()
        .map(|k| {
            let (labels, classes) = dense_labels(&rep.factor_column(k, 0..n));
            let model = GradientBoosting::fit(&Samples {
                x: x_train,
                d: rep.dim,
                y: &labels[..train],
                classes,
            });
            let predicted = model.predict(x_test, rep.dim);
            let correct = predicted.iter().zip(&labels[train..]).filter(|(p, y)| p == y).count();
            (
                model.importances.iter().map(|v| v.abs()).collect(),
                correct as f64 / (n - train) as f64,
            )
        })
        .collect();
    // importance[code][factor]
    let importance: Vec<Vec<f64>> =
        (0..rep.dim).map(|j| per_factor.iter().map(|(imp, _)| imp[j]).collect()).collect();
    let informativeness = per_factor.iter().map(|p| p.1).sum::<f64>() / rep.num_factors as f64;
    let (disentanglement, completeness) = scores(&importance);
    Dci {
        disentanglement,
        completeness,
        informativeness,
        mean: (disentanglement + completeness + informativeness) / 3.0,
    }
}

/// Disentanglement and completeness of an importance matrix `r[code][factor]`.
pub fn scores(r: &[Vec<f64>]) -> (f64, f64) {
    let (codes, factors) = (r.len(), r[0].len());
    let total: f64 = r.iter().flatten().sum();
    let weight = |v: f64| if total == 0.0 { 1.0 / (codes * factors) as f64 } else { v / total };
    let disentanglement = (0..codes)
        .map(|i| (1.0 - entropy(&r[i], factors)) * r[i].iter().map(|&v| weight(v)).sum::<f64>())
        .sum();
    let completeness = (0..factors)
        .map(|k| {
            let column: Vec<f64> = r.iter().map(|row| row[k]).collect();
            (1.0 - entropy(&column, codes)) * column.iter().map(|&v| weight(v)).sum::<f64>()
        })
        .sum();
    (disentanglement, completeness)
}

/// `scipy.stats.entropy(p + 1e-11, base=base)`: p normalised to sum 1.
fn entropy(p: &[f64], base: usize) -> f64 {
    let q: Vec<f64> = p.iter().map(|v| v + 1e-11).collect();
    let s: f64 = q.iter().sum();
    -q.iter().map(|v| v / s).map(|v| v * v.ln()).sum::<f64>() / (base as f64).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagonal_importance_is_perfectly_disentangled_and_complete() {
        let r = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        let (d, c) = scores(&r);
        assert!((d - 1.0).abs() < 1e-8 && (c - 1.0).abs() < 1e-8, "{d} {c}");
    }

    #[test]
    fn one_code_for_everything_is_complete_but_not_disentangled() {
        // Code 0 explains both factors; code 1 nothing. Each factor lives in one code (C = 1),
        // but code 0 is spread over two factors (D = 0 by the base-2 entropy).
        let r = vec![vec![1.0, 1.0], vec![0.0, 0.0]];
        let (d, c) = scores(&r);
        assert!(d.abs() < 1e-8 && (c - 1.0).abs() < 1e-8, "{d} {c}");
    }

    #[test]
    fn known_value_of_a_mixed_matrix() {
        // Hand computation: code rows [3, 1] and [0, 2]; total 6.
        // D: code 0: 1 − H₂(.75, .25) = 1 − 0.811278 = 0.188722, weight 4/6; code 1: 1, weight 2/6.
        // C: factor 0: 1 − H₂(1, 0) = 1, weight 3/6; factor 1: 1 − H₂(1/3, 2/3) = 0.081704, weight 3/6.
        let (d, c) = scores(&[vec![3.0, 1.0], vec![0.0, 2.0]]);
        assert!((d - (0.188722 * 4.0 / 6.0 + 2.0 / 6.0)).abs() < 1e-5, "{d}");
        assert!((c - (0.5 + 0.081704 * 0.5)).abs() < 1e-5, "{c}");
    }
}
