//! Disentanglement metrics exactly as disentanglement_lib defines them (SPEC §6): DCI with a
//! gradient-boosted classifier per factor, MIG with 20 equal-width bins, SAP with a linear SVM
//! on each single code dimension.
//!
//! No Rust crate implements scikit-learn's `GradientBoostingClassifier` (multinomial deviance,
//! Friedman-MSE trees, impurity importances) or liblinear's L2-regularised squared-hinge SVM
//! with a regularised intercept and balanced class weights, which these definitions depend on;
//! both are written here ([`gbt`], [`sap`]) and checked against values from the reference.

pub mod arrays;
pub mod dci;
pub mod gbt;
pub mod mig;
pub mod sap;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Codes (n × d, row-major) with their integer factors (n × k, row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct Representation {
    pub codes: Vec<f64>,
    pub dim: usize,
    pub factors: Vec<i64>,
    pub num_factors: usize,
}

impl Representation {
    /// Checks shapes and values: same number of rows, finite codes, every factor with at
    /// least two values.
    pub fn new(
        codes: Vec<f64>,
        dim: usize,
        factors: Vec<i64>,
        num_factors: usize,
    ) -> Result<Representation> {
        if dim == 0 || num_factors == 0 {
            return Err(Error::Invalid("codes and factors need at least one column each".into()));
        }
        if !codes.len().is_multiple_of(dim)
            || !factors.len().is_multiple_of(num_factors)
            || codes.len() / dim != factors.len() / num_factors
        {
            return Err(Error::Invalid(format!(
                "codes have {} rows but factors have {}",
                codes.len() / dim,
                factors.len() / num_factors
            )));
        }
        if let Some(i) = codes.iter().position(|v| !v.is_finite()) {
            return Err(Error::Invalid(format!("code row {} holds a non-finite value", i / dim)));
        }
        let rep = Representation { codes, dim, factors, num_factors };
        for k in 0..num_factors {
            let first = rep.factor(0, k);
            if (0..rep.len()).all(|i| rep.factor(i, k) == first) {
                return Err(Error::Invalid(format!(
                    "factor {k} takes a single value; it cannot be predicted or measured"
                )));
            }
        }
        Ok(rep)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.codes.len() / self.dim
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    pub fn code(&self, i: usize, j: usize) -> f64 {
        self.codes[i * self.dim + j]
    }

    pub fn factor(&self, i: usize, k: usize) -> i64 {
        self.factors[i * self.num_factors + k]
    }

    /// Code column `j` over rows `rows`.
    pub fn code_column(&self, j: usize, rows: std::ops::Range<usize>) -> Vec<f64> {
        rows.map(|i| self.code(i, j)).collect()
    }

    /// Factor column `k` over rows `rows`, relabelled 0..classes in order of value.
    pub fn factor_column(&self, k: usize, rows: std::ops::Range<usize>) -> Vec<i64> {
        rows.map(|i| self.factor(i, k)).collect()
    }
}

/// DCI scores.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Dci {
    pub disentanglement: f64,
    pub completeness: f64,
    pub informativeness: f64,
    pub mean: f64,
}

/// The SPEC's `disentanglement` object.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Disentanglement {
    pub dci: Dci,
    pub mig: f64,
    pub sap: f64,
}

/// All three metrics: the first `train` rows fit the classifiers (and give MIG), the rest test.
pub fn disentanglement(rep: &Representation, train: usize) -> Result<Disentanglement> {
    if train == 0 || train >= rep.len() {
        return Err(Error::Invalid(format!(
            "--train must be between 1 and {} (the rows minus one), got {train}",
            rep.len().saturating_sub(1)
        )));
    }
    Ok(Disentanglement {
        dci: dci::dci(rep, train),
        mig: mig::mig(rep, 0..train),
        sap: sap::sap(rep, train),
    })
}

/// Reads codes and factors from `.npy` files, with errors naming the file at fault.
pub fn read_representation(codes: &Path, factors: &Path) -> Result<Representation> {
    let c = arrays::read_codes(codes)?;
    let f = arrays::read_factors(factors)?;
    if c.rows != f.rows {
        return Err(Error::Invalid(format!(
            "{} has {} rows but {} has {}",
            codes.display(),
            c.rows,
            factors.display(),
            f.rows
        )));
    }
    if c.rows < 2 {
        return Err(Error::file(codes, "needs at least two rows (one to fit, one to test)"));
    }
    if let Some(i) = c.values.iter().position(|v| !v.is_finite()) {
        return Err(Error::file(
            codes,
            format!("row {} holds a non-finite value", i / c.cols.max(1)),
        ));
    }
    for k in 0..f.cols {
        let first = f.values[k];
        if (0..f.rows).all(|i| f.values[i * f.cols + k] == first) {
            return Err(Error::file(
                factors,
                format!(
                    "factor column {k} takes a single value ({first}); it cannot be predicted or measured"
                ),
            ));
        }
    }
    Representation::new(c.values, c.cols, f.values, f.cols)
}

/// The default split of `metrics`: the first ⌊2n/3⌋ rows fit.
pub fn default_train_rows(n: usize) -> usize {
    2 * n / 3
}

/// Maps values to dense class indices 0..n in increasing order of value.
pub fn dense_labels(values: &[i64]) -> (Vec<usize>, usize) {
    let mut distinct: Vec<i64> = values.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    (
        values.iter().map(|v| distinct.binary_search(v).expect("value is present")).collect(),
        distinct.len(),
    )
}
