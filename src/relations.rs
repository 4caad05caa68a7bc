//! Relations between components, as data: each relation is a table from input component to
//! output component (None where the relation is undefined, which is never sampled).

use crate::data::Task;
use crate::{Error, Result};

/// How a built-in or declared relation changes the kept-factor classes.
#[derive(Clone, Debug, PartialEq)]
pub enum RelationSpec {
    /// Add `delta` to kept factor `factor`; wrap around or be undefined past the ends.
    Shift { name: String, factor: usize, delta: i64, wrap: bool },
}

impl RelationSpec {
    /// A shift of kept factor `factor` by `delta`.
    pub fn shift(name: &str, factor: usize, delta: i64, wrap: bool) -> RelationSpec {
        RelationSpec::Shift { name: name.to_string(), factor, delta, wrap }
    }

    /// The relation's name.
    pub fn name(&self) -> &str {
        match self {
            RelationSpec::Shift { name, .. } => name,
        }
    }

    /// The table of this relation over `task`'s components.
    pub fn table(&self, task: &Task) -> Vec<Option<usize>> {
        (0..task.components())
            .map(|c| {
                let mut classes = task.component_classes(c);
                match self {
                    RelationSpec::Shift { factor, delta, wrap, .. } => {
                        let n = task.kept[*factor].classes() as i64;
                        let moved = classes[*factor] as i64 + delta;
                        let moved = if *wrap { moved.rem_euclid(n) } else if (0..n).contains(&moved) { moved } else { return None };
                        classes[*factor] = moved as usize;
                    }
                }
                Some(task.component_from_classes(&classes))
            })
            .collect()
    }
}

/// A relation ready to train and apply: its name and table.
#[derive(Clone, Debug, PartialEq)]
pub struct Relation {
    pub name: String,
    pub table: Vec<Option<usize>>,
}

impl Relation {
    /// Output component for input `c`, if defined.
    pub fn apply(&self, c: usize) -> Option<usize> {
        self.table[c]
    }

    /// Components where the relation is defined.
    pub fn valid_inputs(&self) -> Vec<usize> {
        (0..self.table.len()).filter(|&c| self.table[c].is_some()).collect()
    }
}

/// The relations a run trains, in a fixed order (the ReL's one-hot relation id).
#[derive(Clone, Debug, PartialEq)]
pub struct RelationSet {
    pub relations: Vec<Relation>,
}

impl RelationSet {
    /// The task's relations named in `names` (all of them when empty).
    pub fn for_task(task: &Task, names: &[String]) -> Result<RelationSet> {
        let specs: Vec<&RelationSpec> = if names.is_empty() {
            task.relations.iter().collect()
        } else {
            names
                .iter()
                .map(|n| {
                    task.relations.iter().find(|r| r.name() == n).ok_or_else(|| {
                        let known: Vec<&str> = task.relations.iter().map(|r| r.name()).collect();
                        Error::Unknown(format!("unknown relation '{n}' for task '{}' (known: {})", task.name, known.join(", ")))
                    })
                })
                .collect::<Result<_>>()?
        };
        if specs.is_empty() {
            return Err(Error::Invalid(format!("task '{}' has no relations the ReL can learn yet (its binary relations are not implemented)", task.name)));
        }
        let relations = specs.iter().map(|s| Relation { name: s.name().to_string(), table: s.table(task) }).collect();
        Ok(RelationSet { relations })
    }

    /// Number of relations.
    pub fn len(&self) -> usize {
        self.relations.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.relations.is_empty()
    }

    /// Relations defined on component `c` (their positions in the set).
    pub fn valid_at(&self, c: usize) -> Vec<usize> {
        (0..self.relations.len()).filter(|&r| self.relations[r].apply(c).is_some()).collect()
    }

    /// Position of the relation called `name`.
    pub fn position(&self, name: &str) -> Result<usize> {
        self.relations.iter().position(|r| r.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.relations.iter().map(|r| r.name.as_str()).collect();
            Error::Unknown(format!("unknown relation '{name}' (this run knows: {})", known.join(", ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dsprites() -> (Task, RelationSet) {
        let task = Task::by_name("dsprites").unwrap();
        let set = RelationSet::for_task(&task, &[]).unwrap();
        (task, set)
    }

    #[test]
    fn moves_wrap_around() {
        let (t, set) = dsprites();
        let left = &set.relations[set.position("move_left").unwrap()];
        let c = t.component_from_classes(&[1, 0, 2]);
        assert_eq!(left.apply(c), Some(t.component_from_classes(&[1, 2, 2])));
        let down = &set.relations[set.position("move_down").unwrap()];
        assert_eq!(down.apply(c), Some(t.component_from_classes(&[1, 0, 0])));
        let up = &set.relations[set.position("move_up").unwrap()];
        for c in 0..27 {
            assert_eq!(up.apply(down.apply(c).unwrap()), Some(c), "up undoes down");
        }
    }

    #[test]
    fn change_shape_is_cyclic_and_keeps_position() {
        let (t, set) = dsprites();
        let cs = &set.relations[set.position("change_shape").unwrap()];
        let c = t.component_from_classes(&[2, 1, 0]);
        assert_eq!(cs.apply(c), Some(t.component_from_classes(&[0, 1, 0])));
        for c in 0..27 {
            let thrice = cs.apply(cs.apply(cs.apply(c).unwrap()).unwrap()).unwrap();
            assert_eq!(thrice, c);
        }
    }

    #[test]
    fn saturating_shift_is_undefined_at_the_end() {
        let t = Task::by_name("dsprites").unwrap();
        let table = RelationSpec::shift("r", 1, 1, false).table(&t);
        assert_eq!(table[t.component_from_classes(&[0, 2, 0])], None);
        assert_eq!(table[t.component_from_classes(&[0, 1, 0])], Some(t.component_from_classes(&[0, 2, 0])));
    }

    #[test]
    fn names_select_and_unknown_names_fail() {
        let t = Task::by_name("dsprites").unwrap();
        let set = RelationSet::for_task(&t, &["change_shape".into()]).unwrap();
        assert_eq!(set.len(), 1);
        let err = RelationSet::for_task(&t, &["teleport".into()]).unwrap_err().to_string();
        assert!(err.contains("unknown relation 'teleport'"), "{err}");
    }
}
