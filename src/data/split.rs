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
    /// Test 20% of all images, validation 10% of the rest, τ labelled per component; a
    /// component with fewer than τ training images is an error naming it by `label`.
    pub fn new(
        components: &[usize],
        n_components: usize,
        tau: usize,
        seed: u64,
        label: &dyn Fn(usize) -> String,
    ) -> Result<Split> {
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
            let all = components.iter().filter(|&&k| k == c).count();
            return Err(Error::Invalid(format!(
                "component {} has only {} training images ({all} in all), fewer than tau = {tau} (each component needs at least 2); lower tau or add images",
                label(c),
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

    fn number(c: usize) -> String {
        c.to_string()
    }

    #[test]
    fn splits_are_disjoint_deterministic_and_sized() {
        let components: Vec<usize> = (0..1000).map(|i| i % 4).collect();
        let s = Split::new(&components, 4, 10, 3, &number).unwrap();
        assert_eq!(s, Split::new(&components, 4, 10, 3, &number).unwrap());
        assert_ne!(s.test, Split::new(&components, 4, 10, 4, &number).unwrap().test);
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
        let s = Split::new(&components, 4, 7, 1, &number).unwrap();
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
        let err = Split::new(&components, 2, 2, 0, &|c| format!("'c{c}'")).unwrap_err().to_string();
        assert!(err.contains("component 'c1' has only 1 training images (1 in all)"), "{err}");
    }
}
