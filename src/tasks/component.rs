//! Components: one combination of the kept factors' classes, one Gaussian of the mixture prior.
//! Components are numbered in mixed radix over the kept factors, the first kept factor slowest.

use super::Task;

/// A factor the task keeps: its values are grouped into classes.
#[derive(Clone, Debug)]
pub struct KeptFactor {
    /// Name of the kept factor as shown to users (e.g. `x`).
    pub name: &'static str,
    /// Index of the dataset factor it reads.
    pub factor: usize,
    /// Class of each factor value.
    pub class_of: Vec<usize>,
    /// Names of the classes.
    pub class_names: Vec<&'static str>,
}

impl KeptFactor {
    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.class_names.len()
    }
}

impl Task {
    /// Number of mixture components (combinations of kept classes).
    pub fn components(&self) -> usize {
        self.kept.iter().map(KeptFactor::classes).product()
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

    /// The kept factors of component `c` with its class name of each.
    fn component_parts(&self, c: usize) -> impl Iterator<Item = (&KeptFactor, &'static str)> {
        self.kept.iter().zip(self.component_classes(c)).map(|(k, class)| (k, k.class_names[class]))
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
}
