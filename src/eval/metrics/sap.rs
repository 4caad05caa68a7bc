//! Separated attribute predictability (disentanglement_lib `sap_score.py`, discrete factors):
//! a linear SVM per (code dimension, factor) on that single dimension, scored by test
//! accuracy; SAP is the mean over factors of the best minus the second-best dimension.
//!
//! The SVM is scikit-learn's `LinearSVC(C=0.01, class_weight="balanced")`: liblinear's
//! L2-regularised squared hinge loss with the intercept as a regularised feature of value 1,
//! one-vs-rest for more than two classes (positives weighted C·w_k, the rest C), both classes
//! weighted for two. With one feature each problem is a strongly convex function of two
//! variables, minimised here by Newton's method to the exact optimum.

use rayon::prelude::*;

use super::{Representation, dense_labels};

/// The SVM's regularisation constant.
pub const C: f64 = 0.01;

/// SAP with the first `train` rows for fitting and the rest for testing.
pub fn sap(rep: &Representation, train: usize) -> f64 {
    let n = rep.len();
    let scores: Vec<Vec<f64>> = (0..rep.num_factors)
        .map(|k| {
            let (labels, classes) = dense_labels(&rep.factor_column(k, 0..n));
            (0..rep.dim)
                .into_par_iter()
                .map(|j| {
                    let x = rep.code_column(j, 0..n);
                    let svm = LinearSvm::fit(&x[..train], &labels[..train], classes);
                    let correct = x[train..]
                        .iter()
                        .zip(&labels[train..])
                        .filter(|&(&v, &y)| svm.predict(v) == y)
                        .count();
                    correct as f64 / (n - train) as f64
                })
                .collect()
        })
        .collect();
    let gaps: Vec<f64> = scores
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.sort_by(|a, b| b.total_cmp(a));
            s[0] - s.get(1).copied().unwrap_or(0.0)
        })
        .collect();
    gaps.iter().sum::<f64>() / gaps.len() as f64
}

/// A one-feature linear SVM: (weight, intercept) per class (one pair for two classes).
#[derive(Clone, Debug)]
pub struct LinearSvm {
    planes: Vec<(f64, f64)>,
}

impl LinearSvm {
    /// Fits on values `x` with dense labels `y` in 0..classes, balanced class weights.
    pub fn fit(x: &[f64], y: &[usize], classes: usize) -> LinearSvm {
        let mut counts = vec![0usize; classes];
        y.iter().for_each(|&c| counts[c] += 1);
        // class_weight="balanced": n / (classes · count).
        let weight: Vec<f64> = counts
            .iter()
            .map(|&c| if c == 0 { 0.0 } else { x.len() as f64 / (classes * c) as f64 })
            .collect();
        let planes = if classes == 2 {
            // The objective is symmetric in the sign convention; class 1 is the positive side.
            let signs: Vec<f64> = y.iter().map(|&c| if c == 1 { 1.0 } else { -1.0 }).collect();
            let costs: Vec<f64> = y.iter().map(|&c| C * weight[c]).collect();
            vec![solve(x, &signs, &costs)]
        } else {
            (0..classes)
                .map(|k| {
                    let signs: Vec<f64> =
                        y.iter().map(|&c| if c == k { 1.0 } else { -1.0 }).collect();
                    let costs: Vec<f64> =
                        y.iter().map(|&c| if c == k { C * weight[k] } else { C }).collect();
                    solve(x, &signs, &costs)
                })
                .collect()
        };
        LinearSvm { planes }
    }

    /// The predicted class of `v`.
    pub fn predict(&self, v: f64) -> usize {
        match self.planes.as_slice() {
            [(w, b)] => usize::from(w * v + b > 0.0),
            planes => {
                planes
                    .iter()
                    .enumerate()
                    .fold((0, f64::NEG_INFINITY), |best, (k, (w, b))| {
                        if w * v + b > best.1 { (k, w * v + b) } else { best }
                    })
                    .0
            }
        }
    }
}

/// Minimises ½(w² + b²) + Σ cᵢ·max(0, 1 − sᵢ(w·xᵢ + b))² by Newton's method with backtracking.
fn solve(x: &[f64], s: &[f64], c: &[f64]) -> (f64, f64) {
    let objective = |w: f64, b: f64| {
        0.5 * (w * w + b * b)
            + x.iter()
                .zip(s)
                .zip(c)
                .map(|((&x, &s), &c)| c * (1.0 - s * (w * x + b)).max(0.0).powi(2))
                .sum::<f64>()
    };
    let (mut w, mut b) = (0.0, 0.0);
    for _ in 0..100 {
        // Gradient and (generalised) Hessian over the active margin violations.
        let (mut gw, mut gb, mut hww, mut hwb, mut hbb) = (w, b, 1.0, 0.0, 1.0);
        for ((&x, &s), &c) in x.iter().zip(s).zip(c) {
            let margin = 1.0 - s * (w * x + b);
            if margin > 0.0 {
                gw -= 2.0 * c * margin * s * x;
                gb -= 2.0 * c * margin * s;
                hww += 2.0 * c * x * x;
                hwb += 2.0 * c * x;
                hbb += 2.0 * c;
            }
        }
        let det = hww * hbb - hwb * hwb;
        let (dw, db) = ((hbb * gw - hwb * gb) / det, (hww * gb - hwb * gw) / det);
        let (f0, mut t) = (objective(w, b), 1.0);
        while objective(w - t * dw, b - t * db) > f0 - 1e-4 * t * (gw * dw + gb * db) && t > 1e-10 {
            t *= 0.5;
        }
        (w, b) = (w - t * dw, b - t * db);
        if (gw * gw + gb * gb).sqrt() < 1e-10 * (1.0 + f0) {
            break;
        }
    }
    (w, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solution_is_a_stationary_point_of_the_objective() {
        let x = [-2.0, -1.0, -0.5, 0.3, 1.0, 2.5, 0.1];
        let s = [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0, -1.0];
        let c = [0.5, 0.5, 2.0, 2.0, 2.0, 2.0, 0.5];
        let (w, b) = solve(&x, &s, &c);
        let (mut gw, mut gb) = (w, b);
        for i in 0..x.len() {
            let m = 1.0 - s[i] * (w * x[i] + b);
            if m > 0.0 {
                gw -= 2.0 * c[i] * m * s[i] * x[i];
                gb -= 2.0 * c[i] * m * s[i];
            }
        }
        assert!(gw.abs() < 1e-9 && gb.abs() < 1e-9, "gradient ({gw}, {gb}) at ({w}, {b})");
    }

    /// Reference values: scikit-learn 1.9.1, `LinearSVC(C=0.01, class_weight="balanced",
    /// tol=1e-8, max_iter=100000)` on x_i = 10·(i mod 3) + sin(0.37·i), i < 300.
    #[test]
    fn planes_match_scikit_learn() {
        let x: Vec<f64> =
            (0..300).map(|i| (i % 3) as f64 * 10.0 + (i as f64 * 0.37).sin()).collect();
        let y: Vec<usize> = (0..300).map(|i| i % 3).collect();
        let close = |got: (f64, f64), want: (f64, f64)| {
            assert!(
                (got.0 - want.0).abs() < 1e-6 && (got.1 - want.1).abs() < 1e-6,
                "{got:?} vs {want:?}"
            )
        };
        let svm = LinearSvm::fit(&x, &y, 3);
        close(svm.planes[0], (-0.17388042203380244, 0.6554979159402264));
        close(svm.planes[1], (-0.00583631705218271, -0.23561456020937466));
        close(svm.planes[2], (0.07587009302666686, -0.9374592124948743));
        let two: Vec<usize> = x.iter().map(|&v| usize::from(v > 10.0)).collect();
        let svm = LinearSvm::fit(&x, &two, 2);
        close(svm.planes[0], (0.08647452813582736, -0.7193754040247015));
    }
}
