//! Deterministic train / validation / test splits and the τ labelled images per component.

use rand::seq::SliceRandom;

use crate::rng::{Stream, stream};
use crate::{Error, Result};

/// Positions (into a task's images) of each split; `labelled ⊂ train`.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub train: Vec<usize>,
    pub validation: Vec<usize>,
    pub test: Vec<usize>,
    /// τ training images per component: the only labels training ever sees.
    pub labelled: Vec<usize>,
}

impl Split {
    /// Test 20% of all images, validation 10% of the rest, τ labelled per component.
    pub fn new(components: &[usize], n_components: usize, tau: usize, seed: u64) -> Result<Split> {
        let mut order: Vec<usize> = (0..components.len()).collect();
        order.shuffle(&mut stream(seed, Stream::Split, 0));
        let n_test = components.len() / 5;
        let n_val = (components.len() - n_test) / 10;
        let test = order[..n_test].to_vec();
        let validation = order[n_test..n_test + n_val].to_vec();
        let train = order[n_test + n_val..].to_vec();
        let mut per_component = vec![Vec::new(); n_components];
        for &item in &train {
            let list = &mut per_component[components[item]];
            if list.len() < tau {
                list.push(item);
            }
        }
        if let Some((c, list)) =
            per_component.iter().enumerate().find(|(_, l)| l.len() < tau.max(2))
        {
            return Err(Error::Invalid(format!(
                "component {c} has only {} training images, fewer than tau = {tau} (each component needs at least 2)",
                list.len()
            )));
        }
        let labelled = per_component.concat();
        Ok(Split { train, validation, test, labelled })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn splits_are_disjoint_deterministic_and_sized() {
        let components: Vec<usize> = (0..1000).map(|i| i % 4).collect();
        let s = Split::new(&components, 4, 10, 3).unwrap();
        assert_eq!(s, Split::new(&components, 4, 10, 3).unwrap());
        assert_ne!(s.test, Split::new(&components, 4, 10, 4).unwrap().test);
        assert_eq!((s.test.len(), s.validation.len(), s.train.len()), (200, 80, 720));
        let sets: Vec<HashSet<_>> =
            [&s.train, &s.validation, &s.test].iter().map(|v| v.iter().collect()).collect();
        assert!(
            sets[0].is_disjoint(&sets[1])
                && sets[0].is_disjoint(&sets[2])
                && sets[1].is_disjoint(&sets[2])
        );
        assert_eq!(sets.iter().map(HashSet::len).sum::<usize>(), 1000);
    }

    #[test]
    fn labels_are_tau_per_component_and_only_from_train() {
        let components: Vec<usize> = (0..1000).map(|i| i % 4).collect();
        let s = Split::new(&components, 4, 7, 1).unwrap();
        assert_eq!(s.labelled.len(), 28);
        let train: HashSet<_> = s.train.iter().collect();
        assert!(
            s.labelled.iter().all(|i| train.contains(i)),
            "no label leaks from validation or test"
        );
        for c in 0..4 {
            assert_eq!(s.labelled.iter().filter(|&&i| components[i] == c).count(), 7);
        }
    }

    #[test]
    fn too_few_images_for_tau_is_an_error() {
        let components = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let err = Split::new(&components, 2, 2, 0).unwrap_err().to_string();
        assert!(err.contains("component 1"), "{err}");
    }
}
