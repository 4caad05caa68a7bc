//! Relations between components, as data (SPEC §4): each relation is a table from a tuple of
//! input components (one for unary relations, two for HWF's arithmetic) to one or more output
//! components, None where the relation is undefined (never sampled). A run's relations share
//! one ReL, so they share its shape: the same number of inputs and outputs, and the same way of
//! telling the ReL which relation to apply — a one-hot id, or the code of an operator
//! component (HWF: a code drawn from the `+`, `-` or `×` symbol's component).

use rand::Rng;
use rand::seq::IndexedRandom;

use crate::tasks::Task;
use crate::{Error, Result};

/// Arithmetic of HWF's binary relations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Add,
    Sub,
    Mul,
}

impl Operation {
    fn of(self, a: i64, b: i64) -> i64 {
        match self {
            Operation::Add => a + b,
            Operation::Sub => a - b,
            Operation::Mul => a * b,
        }
    }
}

/// How an arithmetic result is written as components.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultForm {
    /// One digit: the result mod 10.
    Mod10,
    /// Two outputs: the sign symbol (`+` for results ≥ 0) and the magnitude's digit.
    SignMagnitude,
    /// Two outputs: the tens digit and the units digit (results are below 100).
    TensUnits,
}

/// How a built-in relation changes the kept-factor classes.
#[derive(Clone, Debug, PartialEq)]
pub enum RelationSpec {
    /// Add `delta` to kept factor `factor`; wrap around or be undefined past the ends.
    Shift { name: String, factor: usize, delta: i64, wrap: bool },
    /// A binary operation on two digits, whose components are 0–9 (digit d is component d).
    /// `operator` is the component whose codes tell the ReL to apply it; `signs` the
    /// components of the `+` and `-` symbols, for results written with a sign.
    Arithmetic {
        name: String,
        operation: Operation,
        form: ResultForm,
        operator: usize,
        signs: (usize, usize),
    },
}

impl RelationSpec {
    /// A shift of kept factor `factor` by `delta`.
    pub fn shift(name: &str, factor: usize, delta: i64, wrap: bool) -> RelationSpec {
        RelationSpec::Shift { name: name.to_string(), factor, delta, wrap }
    }

    /// The relation's name.
    pub fn name(&self) -> &str {
        match self {
            RelationSpec::Shift { name, .. } | RelationSpec::Arithmetic { name, .. } => name,
        }
    }

    /// The relation over `task`'s components, as a table.
    pub fn relation(&self, task: &Task) -> Relation {
        let k = task.components();
        match self {
            RelationSpec::Shift { name, factor, delta, wrap } => {
                let n = task.kept[*factor].classes() as i64;
                let table = (0..k)
                    .map(|c| {
                        let mut classes = task.component_classes(c);
                        let moved = classes[*factor] as i64 + delta;
                        let moved = if *wrap {
                            moved.rem_euclid(n)
                        } else if (0..n).contains(&moved) {
                            moved
                        } else {
                            return None;
                        };
                        classes[*factor] = moved as usize;
                        Some(vec![task.component_from_classes(&classes)])
                    })
                    .collect();
                Relation::new(name, 1, 1, None, k, table)
            }
            RelationSpec::Arithmetic { name, operation, form, operator, signs } => {
                let outputs = if *form == ResultForm::Mod10 { 1 } else { 2 };
                let table = (0..k * k)
                    .map(|i| {
                        let (a, b) = (i / k, i % k);
                        (a < 10 && b < 10)
                            .then(|| written(operation.of(a as i64, b as i64), *form, *signs))
                    })
                    .collect();
                Relation::new(name, 2, outputs, Some(*operator), k, table)
            }
        }
    }
}

/// The output components of an arithmetic result.
fn written(result: i64, form: ResultForm, (plus, minus): (usize, usize)) -> Vec<usize> {
    let digit = |v: i64| v.rem_euclid(10) as usize;
    match form {
        ResultForm::Mod10 => vec![digit(result)],
        ResultForm::SignMagnitude => {
            vec![if result >= 0 { plus } else { minus }, digit(result.abs())]
        }
        ResultForm::TensUnits => vec![digit(result / 10), digit(result)],
    }
}

/// A relation ready to train and apply.
#[derive(Clone, Debug, PartialEq)]
pub struct Relation {
    pub name: String,
    /// Input components per application.
    pub arity: usize,
    /// Output components per application.
    pub outputs: usize,
    /// The component whose codes select this relation in the ReL's input (None: a one-hot id).
    pub operator: Option<usize>,
    components: usize,
    /// Outputs for every input tuple (mixed radix over the components, first input slowest).
    table: Vec<Option<Vec<usize>>>,
    /// The input tuples where the relation is defined.
    valid: Vec<Vec<usize>>,
}

impl Relation {
    fn new(
        name: &str,
        arity: usize,
        outputs: usize,
        operator: Option<usize>,
        components: usize,
        table: Vec<Option<Vec<usize>>>,
    ) -> Relation {
        let tuple = |mut i: usize| {
            let mut t = vec![0; arity];
            for slot in t.iter_mut().rev() {
                *slot = i % components;
                i /= components;
            }
            t
        };
        let valid = (0..table.len()).filter(|&i| table[i].is_some()).map(tuple).collect();
        Relation { name: name.to_string(), arity, outputs, operator, components, table, valid }
    }

    /// Output components for these input components, if defined.
    pub fn apply(&self, inputs: &[usize]) -> Option<&[usize]> {
        if inputs.len() != self.arity || inputs.iter().any(|&c| c >= self.components) {
            return None;
        }
        let index = inputs.iter().fold(0, |acc, &c| acc * self.components + c);
        self.table[index].as_deref()
    }

    /// Input tuples where the relation is defined.
    pub fn valid_inputs(&self) -> &[Vec<usize>] {
        &self.valid
    }

    /// Input tuples where it is defined whose first input is `first`.
    fn valid_from(&self, first: usize) -> impl Iterator<Item = &Vec<usize>> {
        self.valid.iter().filter(move |t| t[0] == first)
    }
}

/// One application of a relation: which, to what, and the true result.
#[derive(Clone, Debug, PartialEq)]
pub struct Application {
    /// Position of the relation in its set.
    pub relation: usize,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
}

impl Application {
    /// The output a chain carries on to its next step: the last one (the digit of a
    /// sign–magnitude or tens–units result, the only output of a single-output relation).
    pub fn carried(&self) -> usize {
        *self.outputs.last().expect("a relation has an output")
    }
}

/// The relations a run trains, in a fixed order (the ReL's one-hot relation id), all of the
/// same shape.
#[derive(Clone, Debug, PartialEq)]
pub struct RelationSet {
    pub relations: Vec<Relation>,
}

impl RelationSet {
    /// The task's relations named in `names` (its default set when empty). Names may also
    /// pick the task's variants, which need a differently shaped ReL and so are not defaults.
    pub fn for_task(task: &Task, names: &[String]) -> Result<RelationSet> {
        let specs: Vec<&RelationSpec> = if names.is_empty() {
            task.relations.iter().collect()
        } else {
            let offered: Vec<&RelationSpec> =
                task.relations.iter().chain(&task.relation_variants).collect();
            names
                .iter()
                .map(|n| {
                    offered.iter().copied().find(|r| r.name() == n).ok_or_else(|| {
                        let known: Vec<&str> = offered.iter().map(|r| r.name()).collect();
                        Error::Unknown(format!(
                            "unknown relation '{n}' for task '{}' (known: {})",
                            task.name,
                            known.join(", ")
                        ))
                    })
                })
                .collect::<Result<_>>()?
        };
        if specs.is_empty() {
            return Err(Error::Invalid(format!("task '{}' has no relations", task.name)));
        }
        let relations: Vec<Relation> = specs.iter().map(|s| s.relation(task)).collect();
        let first = &relations[0];
        if let Some(odd) = relations.iter().find(|r| {
            (r.arity, r.outputs, r.operator.is_some())
                != (first.arity, first.outputs, first.operator.is_some())
        }) {
            return Err(Error::Invalid(format!(
                "relations '{}' and '{}' cannot share one relational learner: {} and {}",
                first.name,
                odd.name,
                shape_of(first),
                shape_of(odd)
            )));
        }
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

    /// Input components per application.
    pub fn arity(&self) -> usize {
        self.relations[0].arity
    }

    /// Output codes per application.
    pub fn outputs(&self) -> usize {
        self.relations[0].outputs
    }

    /// Whether the ReL learns which relation to apply from an operator component's code.
    pub fn operator_coded(&self) -> bool {
        self.relations[0].operator.is_some()
    }

    /// Width of one ReL input row for codes of `dim` dimensions: the input codes, then the
    /// operator's code or the one-hot relation id.
    pub fn input_width(&self, dim: usize) -> usize {
        self.arity() * dim + if self.operator_coded() { dim } else { self.len() }
    }

    /// Relations defined with `first` as their first input (their positions in the set).
    pub fn valid_at(&self, first: usize) -> Vec<usize> {
        (0..self.relations.len())
            .filter(|&r| self.relations[r].valid_from(first).next().is_some())
            .collect()
    }

    /// Position of the relation called `name`.
    pub fn position(&self, name: &str) -> Result<usize> {
        self.relations.iter().position(|r| r.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.relations.iter().map(|r| r.name.as_str()).collect();
            Error::Unknown(format!(
                "unknown relation '{name}' (this run knows: {})",
                known.join(", ")
            ))
        })
    }

    /// A relation and valid inputs, both uniformly at random.
    pub fn sample(&self, rng: &mut impl Rng) -> Application {
        let relation = rng.random_range(0..self.len());
        let inputs = pick(self.relations[relation].valid_inputs().iter(), rng)
            .expect("every relation has a valid input");
        self.application(relation, inputs)
    }

    /// The next step of a chain whose current component is `first`: a uniformly chosen relation
    /// defined there, with uniformly chosen further operands. None when none is defined.
    pub fn continue_from(&self, first: usize, rng: &mut impl Rng) -> Option<Application> {
        let relation = *self.valid_at(first).choose(rng)?;
        self.continue_with(relation, first, rng)
    }

    /// Relation `relation` applied to `first` and uniformly chosen further operands, if it is
    /// defined with `first` as its first input.
    pub fn continue_with(
        &self,
        relation: usize,
        first: usize,
        rng: &mut impl Rng,
    ) -> Option<Application> {
        let inputs = pick(self.relations[relation].valid_from(first), rng)?;
        Some(self.application(relation, inputs))
    }

    /// The application of relation `relation` to `inputs`, which must be valid.
    pub fn application(&self, relation: usize, inputs: Vec<usize>) -> Application {
        let outputs = self.relations[relation].apply(&inputs).expect("valid inputs").to_vec();
        Application { relation, inputs, outputs }
    }
}

/// One item chosen uniformly; a single candidate is taken without drawing, so unary chains
/// consume the random stream exactly as choosing the relation alone does.
fn pick<'a>(
    candidates: impl Iterator<Item = &'a Vec<usize>>,
    rng: &mut impl Rng,
) -> Option<Vec<usize>> {
    let all: Vec<&Vec<usize>> = candidates.collect();
    match all.len() {
        0 => None,
        1 => Some(all[0].clone()),
        _ => all.choose(rng).map(|t| (*t).clone()),
    }
}

fn shape_of(r: &Relation) -> String {
    let selector = if r.operator.is_some() { "an operator code" } else { "a one-hot id" };
    format!(
        "{} takes {} input(s) and {selector} and gives {} output(s)",
        r.name, r.arity, r.outputs
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Stream, stream};

    fn set_of(task: &str, names: &[&str]) -> (Task, RelationSet) {
        let task = crate::tasks::by_name(task).unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let set = RelationSet::for_task(&task, &names).unwrap();
        (task, set)
    }

    fn unary(set: &RelationSet, name: &str, c: usize) -> Option<usize> {
        set.relations[set.position(name).unwrap()].apply(&[c]).map(|o| o[0])
    }

    #[test]
    fn moves_wrap_around() {
        let (t, set) = set_of("dsprites", &[]);
        let c = t.component_from_classes(&[1, 0, 2]);
        assert_eq!(unary(&set, "move_left", c), Some(t.component_from_classes(&[1, 2, 2])));
        assert_eq!(unary(&set, "move_down", c), Some(t.component_from_classes(&[1, 0, 0])));
        for c in 0..27 {
            assert_eq!(
                unary(&set, "move_up", unary(&set, "move_down", c).unwrap()),
                Some(c),
                "up undoes down"
            );
        }
        assert_eq!(set.input_width(8), 8 + 5, "code and one-hot id");
    }

    #[test]
    fn change_shape_is_cyclic_and_keeps_position() {
        let (t, set) = set_of("dsprites", &[]);
        let c = t.component_from_classes(&[2, 1, 0]);
        assert_eq!(unary(&set, "change_shape", c), Some(t.component_from_classes(&[0, 1, 0])));
        let next = |c| unary(&set, "change_shape", c).unwrap();
        for c in 0..27 {
            assert_eq!(next(next(next(c))), c);
        }
    }

    #[test]
    fn saturating_shift_is_undefined_at_the_end() {
        let t = crate::tasks::by_name("dsprites").unwrap();
        let r = RelationSpec::shift("r", 1, 1, false).relation(&t);
        assert_eq!(r.apply(&[t.component_from_classes(&[0, 2, 0])]), None);
        assert_eq!(
            r.apply(&[t.component_from_classes(&[0, 1, 0])]),
            Some(&[t.component_from_classes(&[0, 2, 0])][..])
        );
        assert_eq!(r.valid_inputs().len(), 18);
    }

    #[test]
    fn names_select_and_unknown_names_fail() {
        let (_, set) = set_of("dsprites", &["change_shape"]);
        assert_eq!(set.len(), 1);
        let t = crate::tasks::by_name("dsprites").unwrap();
        let err = RelationSet::for_task(&t, &["teleport".into()]).unwrap_err().to_string();
        assert!(err.contains("unknown relation 'teleport'"), "{err}");
    }

    #[test]
    fn hwf_arithmetic_is_mod_ten_on_digits_only() {
        let (_, set) = set_of("hwf", &[]);
        let names: Vec<&str> = set.relations.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["sum", "sub", "mul"]);
        let at = |name: &str, a: usize, b: usize| {
            set.relations[set.position(name).unwrap()].apply(&[a, b]).map(|o| o.to_vec())
        };
        assert_eq!(at("sum", 7, 8), Some(vec![5]));
        assert_eq!(at("sub", 2, 7), Some(vec![5]), "(2 − 7) mod 10");
        assert_eq!(at("mul", 9, 9), Some(vec![1]));
        assert_eq!(at("sum", 10, 3), None, "`+` is not an operand");
        assert_eq!(at("sum", 3, 12), None);
        assert_eq!(
            set.relations.iter().map(|r| r.operator).collect::<Vec<_>>(),
            [Some(10), Some(11), Some(12)],
            "operators are the +, -, × components"
        );
        assert!(set.relations.iter().all(|r| r.valid_inputs().len() == 100));
        assert_eq!(set.input_width(8), 3 * 8, "two operand codes and the operator's code");
    }

    #[test]
    fn hwf_two_output_variants_write_sign_magnitude_and_two_digits() {
        let (_, set) = set_of("hwf", &["sub_sign_magnitude", "sum_tens_units", "mul_tens_units"]);
        assert_eq!((set.arity(), set.outputs()), (2, 2));
        let at = |name: &str, a: usize, b: usize| {
            set.relations[set.position(name).unwrap()].apply(&[a, b]).unwrap().to_vec()
        };
        assert_eq!(at("sub_sign_magnitude", 2, 7), [11, 5], "− 5");
        assert_eq!(at("sub_sign_magnitude", 7, 2), [10, 5], "+ 5");
        assert_eq!(at("sub_sign_magnitude", 4, 4), [10, 0], "zero is written +0");
        assert_eq!(at("sum_tens_units", 9, 8), [1, 7]);
        assert_eq!(at("sum_tens_units", 2, 3), [0, 5]);
        assert_eq!(at("mul_tens_units", 9, 9), [8, 1]);
        assert_eq!(set.input_width(8), 24);
    }

    #[test]
    fn relations_of_different_shapes_cannot_share_a_learner() {
        let t = crate::tasks::by_name("hwf").unwrap();
        let err = RelationSet::for_task(&t, &["sum".into(), "sum_tens_units".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot share one relational learner"), "{err}");
    }

    #[test]
    fn chains_continue_from_their_component_and_carry_the_last_output() {
        let (_, set) = set_of("hwf", &["sub_sign_magnitude", "sum_tens_units", "mul_tens_units"]);
        let mut rng = stream(0, Stream::Eval, 0);
        for first in 0..10 {
            let step = set.continue_from(first, &mut rng).expect("every digit starts a step");
            assert_eq!(step.inputs[0], first);
            assert!(step.inputs[1] < 10);
            assert_eq!(step.carried(), step.outputs[1]);
        }
        assert_eq!(set.continue_from(10, &mut rng), None, "no relation starts at `+`");
        let dsprites = set_of("dsprites", &[]).1;
        for _ in 0..50 {
            let a = dsprites.sample(&mut rng);
            assert_eq!(dsprites.relations[a.relation].apply(&a.inputs), Some(&a.outputs[..]));
        }
    }
}
