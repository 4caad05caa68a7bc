//! Components: one combination of the kept factors' classes, one Gaussian of the mixture prior.
//! Components are numbered in mixed radix over the kept factors, the first kept factor slowest.

use super::Task;
use crate::rel::relation::ClassRef;

/// A factor the task keeps: its values are grouped into classes.
#[derive(Clone, Debug)]
pub struct KeptFactor {
    /// Name of the kept factor as shown to users (e.g. `x`).
    pub name: String,
    /// Index of the dataset factor it reads.
    pub factor: usize,
    /// Class of each factor value.
    pub class_of: Vec<usize>,
    /// Names of the classes.
    pub class_names: Vec<String>,
    /// The integer value of each class, for a factor whose values are integers (unbanded);
    /// None for named classes and bands.
    pub values: Option<Vec<i64>>,
}

impl KeptFactor {
    /// A factor of named classes, one per dataset value (`class_of` the identity).
    pub fn named(name: &str, factor: usize, class_names: &[&str]) -> KeptFactor {
        let class_names: Vec<String> = class_names.iter().map(|c| c.to_string()).collect();
        KeptFactor {
            name: name.into(),
            factor,
            class_of: (0..class_names.len()).collect(),
            class_names,
            values: None,
        }
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.class_names.len()
    }

    /// The number relations compute with for class `c`: its value for an integer factor, else
    /// its index.
    pub fn class_number(&self, c: usize) -> i64 {
        self.values.as_ref().map_or(c as i64, |v| v[c])
    }

    /// The class whose [`KeptFactor::class_number`] is `number`.
    pub fn class_of_number(&self, number: i64) -> Option<usize> {
        match &self.values {
            Some(values) => values.iter().position(|&v| v == number),
            None => usize::try_from(number).ok().filter(|&c| c < self.classes()),
        }
    }

    /// The class `class` names: by value for an integer factor, by name (or index) otherwise.
    pub fn class_named(&self, class: &ClassRef) -> Option<usize> {
        match class {
            ClassRef::Name(name) => self
                .class_names
                .iter()
                .position(|n| n == name)
                .or_else(|| name.parse().ok().and_then(|v| self.class_of_number(v))),
            ClassRef::Value(v) => self
                .class_names
                .iter()
                .position(|n| *n == v.to_string())
                .filter(|_| self.values.is_none())
                .or_else(|| self.class_of_number(*v)),
        }
    }

    /// How users refer to class `c`: its value for an integer factor, else its name.
    pub fn class_ref(&self, c: usize) -> ClassRef {
        match &self.values {
            Some(values) => ClassRef::Value(values[c]),
            None => ClassRef::Name(self.class_names[c].clone()),
        }
    }
}

impl Task {
    /// Number of mixture components (combinations of kept classes).
    pub fn components(&self) -> usize {
        self.kept.iter().map(KeptFactor::classes).product()
    }

    /// The share of a dataset's images in each component when every combination of factor
    /// values is equally common (the built-in tasks' grids): the product over kept factors of
    /// the share of the factor's values in the task its class covers (dSprites' 11 / 10 / 11
    /// positions per band make the middle band's components the smaller).
    pub fn grid_component_shares(&self) -> Vec<f64> {
        (0..self.components())
            .map(|c| {
                let classes = self.component_classes(c);
                self.kept
                    .iter()
                    .zip(classes)
                    .map(|(k, class)| {
                        let allowed = |v: &usize| {
                            self.nuisance_subset[k.factor].as_ref().is_none_or(|a| a.contains(v))
                        };
                        let values: Vec<usize> = (0..k.class_of.len()).filter(allowed).collect();
                        let covered = values.iter().filter(|&&v| k.class_of[v] == class).count();
                        covered as f64 / values.len() as f64
                    })
                    .product()
            })
            .collect()
    }

    /// Component of an image with these dataset factor classes.
    pub fn component_of(&self, classes: &[usize]) -> usize {
        self.kept.iter().fold(0, |acc, k| acc * k.classes() + k.class_of[classes[k.factor]])
    }

    /// Kept-factor classes of component `c`.
    pub fn component_classes(&self, mut c: usize) -> Vec<usize> {
        let mut out = vec![0; self.kept.len()];
        for (slot, k) in out.iter_mut().zip(&self.kept).rev() {
            *slot = c % k.classes();
            c /= k.classes();
        }
        out
    }

    /// Component with these kept-factor classes.
    pub fn component_from_classes(&self, classes: &[usize]) -> usize {
        self.kept.iter().zip(classes).fold(0, |acc, (k, &c)| acc * k.classes() + c)
    }

    /// Label of component `c` with factor names, e.g. `shape=heart x=left y=top`.
    pub fn component_label(&self, c: usize) -> String {
        self.component_parts(c)
            .map(|(k, class)| format!("{}={class}", k.name))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Short label of component `c`: its class names, e.g. `heart/left/top`.
    pub fn component_short_label(&self, c: usize) -> String {
        self.component_parts(c).map(|(_, class)| class).collect::<Vec<_>>().join("/")
    }

    /// Dataset factor classes `classes` moved into component `to`: each kept factor whose
    /// class changes takes the value of its new class at the same offset within the class
    /// (clamped to the class's values the task allows), the nuisances unchanged.
    pub fn move_to_component(&self, classes: &[usize], to: usize) -> Vec<usize> {
        let mut moved = classes.to_vec();
        for (k, target) in self.kept.iter().zip(self.component_classes(to)) {
            let value = classes[k.factor];
            if k.class_of[value] == target {
                continue;
            }
            let allowed =
                |v: &usize| self.nuisance_subset[k.factor].as_ref().is_none_or(|a| a.contains(v));
            let values_of = |class: usize| {
                (0..k.class_of.len())
                    .filter(|&v| k.class_of[v] == class)
                    .filter(allowed)
                    .collect::<Vec<_>>()
            };
            let offset = values_of(k.class_of[value]).iter().position(|&v| v == value).unwrap_or(0);
            let new = values_of(target);
            if let Some(&v) = new.get(offset.min(new.len().saturating_sub(1))) {
                moved[k.factor] = v;
            }
        }
        moved
    }

    /// The kept factors of component `c` with its class name of each.
    fn component_parts(&self, c: usize) -> impl Iterator<Item = (&KeptFactor, &str)> {
        self.kept
            .iter()
            .zip(self.component_classes(c))
            .map(|(k, class)| (k, k.class_names[class].as_str()))
    }
}

#[cfg(test)]
mod tests {
    use crate::tasks::by_name;

    #[test]
    fn components_round_trip_and_use_bands() {
        let t = by_name("dsprites").unwrap();
        for c in 0..27 {
            assert_eq!(t.component_from_classes(&t.component_classes(c)), c);
        }
        assert_eq!(t.component_of(&[2, 0, 0, 10, 11]), t.component_from_classes(&[2, 0, 1]));
        assert_eq!(t.component_of(&[1, 0, 0, 21, 31]), t.component_from_classes(&[1, 2, 2]));
        let heart = t.component_from_classes(&[2, 0, 2]);
        assert_eq!(t.component_label(heart), "shape=heart x=left y=bottom");
        assert_eq!(t.component_short_label(heart), "heart/left/bottom");
    }

    #[test]
    fn grid_shares_count_the_values_each_component_covers() {
        let t = by_name("dsprites").unwrap();
        let shares = t.grid_component_shares();
        assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let share = |classes: [usize; 3]| shares[t.component_from_classes(&classes)];
        let third = 1.0 / 3.0;
        assert!((share([0, 1, 1]) - third * 10.0 / 32.0 * 10.0 / 32.0).abs() < 1e-12);
        assert!((share([2, 0, 2]) - third * 11.0 / 32.0 * 11.0 / 32.0).abs() < 1e-12);
        assert!((share([1, 2, 1]) - third * 11.0 / 32.0 * 10.0 / 32.0).abs() < 1e-12);
        let hwf = by_name("hwf").unwrap().grid_component_shares();
        assert!(hwf.iter().all(|&s| (s - 1.0 / 13.0).abs() < 1e-12), "{hwf:?}");
        // Shapes3D keeps 3 of its 8 scales, one value each: its 120 components are equal.
        let rooms = by_name("shapes3d").unwrap().grid_component_shares();
        assert!(rooms.iter().all(|&s| (s - 1.0 / 120.0).abs() < 1e-12), "{rooms:?}");
    }

    #[test]
    fn moving_keeps_the_offset_in_the_band_and_every_nuisance() {
        let t = by_name("dsprites").unwrap();
        // x position 3 is the fourth of the left band; the centre band starts at 11.
        let classes = [1, 3, 38, 3, 25];
        let to = t.component_from_classes(&[1, 1, 2]);
        assert_eq!(t.move_to_component(&classes, to), [1, 3, 38, 14, 25]);
        // Position 10, the left band's last, clamps to the centre band's last (20).
        assert_eq!(t.move_to_component(&[1, 3, 38, 10, 25], to), [1, 3, 38, 20, 25]);
        let s = by_name("shapes3d").unwrap();
        let big_red_cube = s.component_from_classes(&[0, 0, 2]);
        assert_eq!(
            s.move_to_component(&[4, 5, 3, 0, 2, 9], big_red_cube),
            [4, 5, 0, 7, 0, 9],
            "scale index 7 is 'big'"
        );
    }
}
