//! The source paper's numbers (Appendix C, tables 4 and 5; table 1), for reports that put ours
//! beside them. Each built-in task holds its own column.

/// The α thresholds of the paper's tables.
pub const ALPHAS: [f64; 6] = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9];
/// The supervision levels τ of table 4.
pub const TAUS: [usize; 3] = [10, 20, 30];
/// Relation-chain depths of table 5.
pub const DEPTHS: [usize; 3] = [1, 5, 10];

/// The paper's numbers for the task called `task`, where it is a built-in task the paper
/// reports on.
pub fn for_task(task: &str) -> Option<&'static PaperNumbers> {
    super::by_name(task).ok().and_then(|t| t.paper)
}

/// One dataset's column of the paper's tables.
#[derive(Debug)]
pub struct PaperNumbers {
    /// Table 4: (accuracy, accepted ratio) for each τ of [`TAUS`] and α of [`ALPHAS`].
    pub classification: [[(f64, f64); 6]; 3],
    /// Table 5: (accuracy, accepted ratio) for each depth of [`DEPTHS`] and α of [`ALPHAS`].
    pub relational: [[(f64, f64); 6]; 3],
    /// Table 1: (model name, DCI mean, MIG, SAP).
    pub disentanglement: &'static [(&'static str, f64, f64, f64)],
}

impl PaperNumbers {
    /// Table 4's (accuracy, accepted ratio) at (τ, α), where the paper has that row.
    pub fn classification(&self, tau: usize, alpha: f64) -> Option<(f64, f64)> {
        Some(self.classification[position(&TAUS, &tau)?][position(&ALPHAS, &alpha)?])
    }

    /// Table 5's (accuracy, accepted ratio) at (depth, α).
    pub fn relational(&self, depth: usize, alpha: f64) -> Option<(f64, f64)> {
        Some(self.relational[position(&DEPTHS, &depth)?][position(&ALPHAS, &alpha)?])
    }

    /// Table 1's (DCI mean, MIG, SAP) of `model`.
    pub fn disentanglement(&self, model: &str) -> Option<(f64, f64, f64)> {
        self.disentanglement.iter().find(|r| r.0 == model).map(|r| (r.1, r.2, r.3))
    }
}

fn position<T: PartialEq>(grid: &[T], value: &T) -> Option<usize> {
    grid.iter().position(|v| v == value)
}

#[cfg(test)]
mod tests {
    use crate::tasks::by_name;

    #[test]
    fn each_task_reads_its_own_column() {
        let paper = |task: &str| by_name(task).unwrap().paper.unwrap();
        assert_eq!(paper("dsprites").classification(10, 0.0), Some((0.548, 1.0)));
        assert_eq!(paper("dsprites-full").classification(10, 0.7), Some((0.948, 0.994)));
        assert_eq!(paper("hwf").classification(20, 0.1), Some((0.992, 0.918)));
        assert_eq!(paper("shapes3d").classification(30, 0.9), Some((0.910, 0.711)));
        assert_eq!(paper("shapes3d").classification(15, 0.0), None, "no such τ in the paper");
        assert_eq!(paper("hwf").relational(10, 0.0), Some((0.9909, 1.0)));
        assert_eq!(paper("dsprites").relational(5, 0.5), Some((0.9997, 0.9711)));
        assert_eq!(paper("shapes3d").relational(1, 0.9), Some((0.9102, 0.7734)));
        assert_eq!(paper("dsprites").disentanglement("factor-vae"), Some((0.8942, 0.98, 0.61)));
        assert_eq!(paper("shapes3d").disentanglement("beta-vae"), Some((0.153, 0.270, 0.131)));
        assert_eq!(paper("shapes3d").disentanglement("absae"), Some((0.6921, 0.6897, 0.5007)));
    }
}
