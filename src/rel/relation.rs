//! Relations between components, as data (SPEC §4). A relation is declared over one kept
//! factor ([`RelationDecl`]: a shift of its class, an expression over the classes of several
//! operands, or an explicit table) and compiled against a task into a table from a tuple of
//! input components to one or more output components, None where the relation is undefined
//! (never sampled). The built-in tasks' relations are declarations of the same kind. A run's
//! relations share one ReL, so they share its shape: the same number of inputs and outputs, and
//! the same way of telling the ReL which relation to apply — a one-hot id, or the code of an
//! operator component (HWF: a code drawn from the `+`, `-` or `×` symbol's component).

use std::collections::BTreeMap;

use rand::Rng;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};

use crate::tasks::{KeptFactor, Task};
use crate::{Error, Result};

/// Most operands an expression relation may take (its table grows as components^operands).
const MAX_OPERANDS: usize = 3;
/// Largest table a declaration may compile to.
const MAX_TABLE: usize = 4_000_000;

/// A relation as a `[[relation]]` table declares it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationDecl {
    pub name: String,
    /// The kept factor the relation changes (and whose classes an expression reads).
    pub factor: String,
    /// Unary: move the factor's class by this many classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift: Option<i64>,
    /// With `shift`: wrap around past the ends (default: undefined there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrap: Option<bool>,
    /// With `expr`: how many operands (`a`, `b`, …); default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operands: Option<usize>,
    /// The result class of each output, as an expression over the operands' classes (a class's
    /// integer value for an integer factor, else its index); a result that is not a class is
    /// undefined there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<Exprs>,
    /// Explicit: input class → output class (unlisted classes: undefined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<BTreeMap<String, ClassRef>>,
    /// With `expr`: the classes operands may take (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<Vec<ClassRef>>,
    /// A class of the factor whose images select the relation in the ReL's input, instead of a
    /// one-hot id (tasks that keep one factor only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<ClassRef>,
}

/// One expression, or one per output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Exprs {
    One(String),
    Many(Vec<String>),
}

impl Exprs {
    fn list(&self) -> Vec<&str> {
        match self {
            Exprs::One(e) => vec![e.as_str()],
            Exprs::Many(es) => es.iter().map(String::as_str).collect(),
        }
    }
}

/// A class named by its name or by its integer value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClassRef {
    Value(i64),
    Name(String),
}

impl std::fmt::Display for ClassRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClassRef::Value(v) => write!(f, "{v}"),
            ClassRef::Name(n) => f.write_str(n),
        }
    }
}

impl RelationDecl {
    /// A shift of kept factor `factor` by `shift` classes.
    pub fn shift(name: &str, factor: &str, shift: i64, wrap: bool) -> RelationDecl {
        RelationDecl {
            name: name.into(),
            factor: factor.into(),
            shift: Some(shift),
            wrap: Some(wrap),
            ..Default::default()
        }
    }

    /// An expression relation of `operands` operands with one expression per output.
    pub fn expression(name: &str, factor: &str, operands: usize, exprs: &[&str]) -> RelationDecl {
        let expr = match exprs {
            [one] => Exprs::One(one.to_string()),
            many => Exprs::Many(many.iter().map(|e| e.to_string()).collect()),
        };
        RelationDecl {
            name: name.into(),
            factor: factor.into(),
            operands: Some(operands),
            expr: Some(expr),
            ..Default::default()
        }
    }

    /// The same relation selected by the codes of `operator`'s class.
    pub fn with_operator(self, operator: &str) -> RelationDecl {
        RelationDecl { operator: Some(ClassRef::Name(operator.into())), ..self }
    }

    /// The same relation on operands of these classes only.
    pub fn on_domain(self, domain: &[&str]) -> RelationDecl {
        RelationDecl {
            domain: Some(domain.iter().map(|c| ClassRef::Name(c.to_string())).collect()),
            ..self
        }
    }

    /// An error about key `key` of this declaration.
    fn error(&self, key: &str, message: impl std::fmt::Display) -> Error {
        Error::config(format!("relation '{}': {key}", self.name), message)
    }

    /// The relation over `task`'s components, as a table.
    pub fn compile(&self, task: &Task) -> Result<Relation> {
        let f = self.kept_factor(task)?;
        let kept = &task.kept[f];
        let kinds = [self.shift.is_some(), self.expr.is_some(), self.table.is_some()];
        if kinds.iter().filter(|&&k| k).count() != 1 {
            return Err(self.error("shift/expr/table", "give exactly one of shift, expr or table"));
        }
        if self.expr.is_none() && (self.operands.is_some() || self.domain.is_some()) {
            return Err(self.error("operands", "operands and domain go with expr"));
        }
        if self.shift.is_none() && self.wrap.is_some() {
            return Err(self.error("wrap", "wrap goes with shift"));
        }
        let operator = match &self.operator {
            None => None,
            Some(_) if task.kept.len() > 1 => {
                return Err(
                    self.error("operator", "an operator class needs a task that keeps one factor")
                );
            }
            Some(class) => Some(self.class_of(kept, class, "operator")?),
        };
        let k = task.components();
        let (arity, outputs, table) = if let Some(delta) = self.shift {
            let wrap = self.wrap.unwrap_or(false);
            (1, 1, self.unary_table(task, f, |c| shifted(c, delta, kept.classes(), wrap)))
        } else if let Some(entries) = &self.table {
            let mut map = vec![None; kept.classes()];
            for (from, to) in entries {
                let from = self.class_of(kept, &parse_ref(from), "table")?;
                map[from] = Some(self.class_of(kept, to, "table")?);
            }
            (1, 1, self.unary_table(task, f, |c| map[c]))
        } else {
            let exprs = self.expr.as_ref().expect("one of the three").list();
            let arity = self.operands.unwrap_or(1);
            if !(1..=MAX_OPERANDS).contains(&arity) {
                return Err(
                    self.error("operands", format!("must be 1 to {MAX_OPERANDS} (got {arity})"))
                );
            }
            if exprs.is_empty() {
                return Err(self.error("expr", "needs at least one expression"));
            }
            let size = k.checked_pow(arity as u32).filter(|&s| s <= MAX_TABLE);
            let size = size.ok_or_else(|| {
                self.error(
                    "operands",
                    format!("{k} components to the power {arity} is too large a table"),
                )
            })?;
            (arity, exprs.len(), self.expression_table(task, f, &exprs, arity, size)?)
        };
        let relation = Relation::new(&self.name, arity, outputs, operator, k, table);
        if relation.valid_inputs().is_empty() {
            return Err(self.error("factor", "the relation is defined for no input"));
        }
        Ok(relation)
    }

    /// Position of the relation's factor among the task's kept factors.
    fn kept_factor(&self, task: &Task) -> Result<usize> {
        if let Some(f) = task.kept.iter().position(|k| k.name == self.factor) {
            return Ok(f);
        }
        let kept: Vec<&str> = task.kept.iter().map(|k| k.name.as_str()).collect();
        let what = if task.factor_names.contains(&self.factor) {
            "is a nuisance, not a kept factor"
        } else {
            "is not a factor of the task"
        };
        Err(self.error("factor", format!("'{}' {what} (kept: {})", self.factor, kept.join(", "))))
    }

    /// The class of `kept` that `class` names.
    fn class_of(&self, kept: &KeptFactor, class: &ClassRef, key: &str) -> Result<usize> {
        kept.class_named(class).ok_or_else(|| {
            let known: Vec<String> =
                (0..kept.classes()).map(|c| kept.class_ref(c).to_string()).collect();
            self.error(
                key,
                format!(
                    "'{class}' is not a class of '{}' (classes: {})",
                    kept.name,
                    known.join(", ")
                ),
            )
        })
    }

    /// A unary relation's table: component c → c with factor `f`'s class moved by `map`.
    fn unary_table(
        &self,
        task: &Task,
        f: usize,
        map: impl Fn(usize) -> Option<usize>,
    ) -> Vec<Option<Vec<usize>>> {
        (0..task.components())
            .map(|c| {
                let mut classes = task.component_classes(c);
                classes[f] = map(classes[f])?;
                Some(vec![task.component_from_classes(&classes)])
            })
            .collect()
    }

    /// An expression relation's table over every tuple of `arity` components: the outputs
    /// take the first operand's component with factor `f` set to each expression's result.
    fn expression_table(
        &self,
        task: &Task,
        f: usize,
        exprs: &[&str],
        arity: usize,
        size: usize,
    ) -> Result<Vec<Option<Vec<usize>>>> {
        let kept = &task.kept[f];
        let trees = exprs
            .iter()
            .map(|e| {
                evalexpr::build_operator_tree(e)
                    .map_err(|err| self.error("expr", format!("'{e}' does not parse: {err}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let domain = match &self.domain {
            None => vec![true; kept.classes()],
            Some(classes) => {
                let mut allowed = vec![false; kept.classes()];
                for class in classes {
                    allowed[self.class_of(kept, class, "domain")?] = true;
                }
                allowed
            }
        };
        let k = task.components();
        let mut table = Vec::with_capacity(size);
        for index in 0..size {
            let tuple = tuple_of(index, arity, k);
            let classes: Vec<usize> = tuple.iter().map(|&c| task.component_classes(c)[f]).collect();
            if classes.iter().any(|&c| !domain[c]) {
                table.push(None);
                continue;
            }
            let mut context = evalexpr::HashMapContext::new();
            for (i, &c) in classes.iter().enumerate() {
                let name = ((b'a' + i as u8) as char).to_string();
                evalexpr::ContextWithMutableVariables::set_value(
                    &mut context,
                    name,
                    evalexpr::Value::Int(kept.class_number(c)),
                )
                .expect("a fresh context takes integer variables");
            }
            let mut outputs = Vec::with_capacity(trees.len());
            for (tree, text) in trees.iter().zip(exprs) {
                let result = tree.eval_with_context(&context).map_err(|err| {
                    let at: Vec<String> =
                        classes.iter().map(|&c| kept.class_ref(c).to_string()).collect();
                    self.error("expr", format!("'{text}' fails at ({}): {err}", at.join(", ")))
                })?;
                let evalexpr::Value::Int(value) = result else {
                    return Err(
                        self.error("expr", format!("'{text}' gives {result}, not an integer"))
                    );
                };
                match kept.class_of_number(value) {
                    Some(class) => outputs.push(class),
                    None => break,
                }
            }
            table.push((outputs.len() == trees.len()).then(|| {
                outputs
                    .into_iter()
                    .map(|class| {
                        let mut out = task.component_classes(tuple[0]);
                        out[f] = class;
                        task.component_from_classes(&out)
                    })
                    .collect()
            }));
        }
        Ok(table)
    }
}

/// A table key as a class reference: an integer where it reads as one.
fn parse_ref(key: &str) -> ClassRef {
    key.parse().map(ClassRef::Value).unwrap_or_else(|_| ClassRef::Name(key.to_string()))
}

/// Class `c` of `n` moved by `delta`, wrapping or undefined past the ends.
fn shifted(c: usize, delta: i64, n: usize, wrap: bool) -> Option<usize> {
    let moved = c as i64 + delta;
    let n = n as i64;
    if wrap {
        Some(moved.rem_euclid(n) as usize)
    } else {
        (0..n).contains(&moved).then_some(moved as usize)
    }
}

/// The tuple of `arity` components at mixed-radix `index` (first input slowest).
fn tuple_of(mut index: usize, arity: usize, components: usize) -> Vec<usize> {
    let mut t = vec![0; arity];
    for slot in t.iter_mut().rev() {
        *slot = index % components;
        index /= components;
    }
    t
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
        let valid = (0..table.len())
            .filter(|&i| table[i].is_some())
            .map(|i| tuple_of(i, arity, components))
            .collect();
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
        let decls: Vec<&RelationDecl> = if names.is_empty() {
            task.relations.iter().collect()
        } else {
            let offered: Vec<&RelationDecl> =
                task.relations.iter().chain(&task.relation_variants).collect();
            names
                .iter()
                .map(|n| {
                    offered.iter().copied().find(|r| &r.name == n).ok_or_else(|| {
                        let known: Vec<&str> = offered.iter().map(|r| r.name.as_str()).collect();
                        Error::Unknown(format!(
                            "unknown relation '{n}' for task '{}' (known: {})",
                            task.name,
                            known.join(", ")
                        ))
                    })
                })
                .collect::<Result<_>>()?
        };
        if decls.is_empty() {
            return Err(Error::Invalid(format!("task '{}' has no relations", task.name)));
        }
        let relations: Vec<Relation> =
            decls.iter().map(|d| d.compile(task)).collect::<Result<_>>()?;
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
        let r = RelationDecl::shift("r", "x", 1, false).compile(&t).unwrap();
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

    /// A task keeping one factor `digit` of classes 0–9 (as its values), for declarations.
    fn digits() -> Task {
        let mut task = crate::tasks::by_name("hwf").unwrap();
        let names: Vec<String> = (0..10).map(|d| d.to_string()).collect();
        task.kept[0] = KeptFactor {
            name: "digit".into(),
            factor: 0,
            class_of: (0..10).collect(),
            class_names: names,
            values: Some((0..10).collect()),
        };
        task.factor_names = vec!["digit".into(), "writer".into()];
        task
    }

    fn table_of(decl: &RelationDecl, task: &Task) -> Vec<(Vec<usize>, Vec<usize>)> {
        let r = decl.compile(task).unwrap();
        r.valid_inputs().iter().map(|i| (i.clone(), r.apply(i).unwrap().to_vec())).collect()
    }

    #[test]
    fn declared_shifts_wrap_or_stop_at_the_ends() {
        let t = digits();
        let wrapping = table_of(&RelationDecl::shift("next", "digit", 1, true), &t);
        assert_eq!(wrapping.len(), 10);
        assert_eq!(wrapping[9], (vec![9], vec![0]));
        let stopping = table_of(&RelationDecl::shift("back2", "digit", -2, false), &t);
        assert_eq!(stopping, (2..10).map(|d| (vec![d], vec![d - 2])).collect::<Vec<_>>());
    }

    #[test]
    fn declared_expressions_match_hand_computed_tables() {
        let t = digits();
        let sum = table_of(&RelationDecl::expression("sum", "digit", 2, &["(a + b) % 10"]), &t);
        assert_eq!(sum.len(), 100);
        for (inputs, out) in &sum {
            assert_eq!(out[0], (inputs[0] + inputs[1]) % 10);
        }
        let sub = table_of(&RelationDecl::expression("sub", "digit", 2, &["a - b"]), &t);
        assert_eq!(sub.len(), 55, "a − b is undefined below 0");
        assert!(sub.iter().all(|(i, o)| i[0] >= i[1] && o[0] == i[0] - i[1]));
        let halves =
            table_of(&RelationDecl::expression("half", "digit", 1, &["a / 2", "a % 2"]), &t);
        assert_eq!(halves[7], (vec![7], vec![3, 1]));
    }

    #[test]
    fn declared_tables_map_listed_classes_only() {
        let t = digits();
        let mut decl =
            RelationDecl { name: "swap".into(), factor: "digit".into(), ..Default::default() };
        decl.table = Some(
            [
                ("0".to_string(), ClassRef::Value(1)),
                ("1".into(), ClassRef::Name("0".into())),
                ("2".into(), ClassRef::Value(3)),
            ]
            .into(),
        );
        assert_eq!(
            table_of(&decl, &t),
            vec![(vec![0], vec![1]), (vec![1], vec![0]), (vec![2], vec![3])]
        );
    }

    #[test]
    fn bad_declarations_name_the_relation_and_the_problem() {
        let t = digits();
        let err = |decl: RelationDecl| decl.compile(&t).unwrap_err().to_string();
        let e = err(RelationDecl::shift("s", "colour", 1, true));
        assert!(e.contains("relation 's'") && e.contains("'colour' is not a factor"), "{e}");
        let e = err(RelationDecl::shift("s", "writer", 1, true));
        assert!(e.contains("'writer' is a nuisance"), "{e}");
        let e = err(RelationDecl::expression("p", "digit", 2, &["(a + b"]));
        assert!(e.contains("relation 'p'") && e.contains("does not parse"), "{e}");
        let e = err(RelationDecl::expression("d", "digit", 2, &["a / b"]));
        assert!(e.contains("relation 'd'") && e.contains("fails at (0, 0)"), "{e}");
        let mut outside =
            RelationDecl { name: "t".into(), factor: "digit".into(), ..Default::default() };
        outside.table = Some([("3".to_string(), ClassRef::Value(12))].into());
        let e = err(outside);
        assert!(e.contains("'12' is not a class of 'digit'"), "{e}");
        let e = err(RelationDecl::expression("never", "digit", 1, &["a + 100"]));
        assert!(e.contains("defined for no input"), "{e}");
        let mut both = RelationDecl::shift("b", "digit", 1, true);
        both.expr = Some(Exprs::One("a".into()));
        assert!(err(both).contains("exactly one of shift, expr or table"));
    }
}
