//! scikit-learn's `GradientBoostingClassifier` with its defaults, as disentanglement_lib's DCI
//! uses it: 100 stages, learning rate 0.1, log-loss (binomial for two classes, multinomial with
//! one tree per class otherwise), regression trees of depth 3 grown on the negative gradient
//! with the Friedman-MSE criterion, leaves set by one Newton step, and impurity-based feature
//! importances averaged over all trees.
//!
//! Like scikit-learn, features are compared as f32 and split thresholds are midpoints of
//! neighbouring distinct values (more than 1e-7 apart). scikit-learn visits features in a random
//! order and keeps the first of equally good splits; here the order is the features' own, so
//! results are deterministic and equal to scikit-learn's up to such ties.

use rayon::prelude::*;

/// Boosting stages.
pub const STAGES: usize = 100;
/// Shrinkage of every stage.
pub const LEARNING_RATE: f64 = 0.1;
/// Depth of each regression tree.
pub const MAX_DEPTH: usize = 3;
/// Neighbouring feature values closer than this are not split (scikit-learn's FEATURE_THRESHOLD).
const FEATURE_THRESHOLD: f64 = 1e-7;

/// Training data: `n` rows of `d` features (row-major, as f32) and dense class labels.
pub struct Samples<'a> {
    pub x: &'a [f32],
    pub d: usize,
    pub y: &'a [usize],
    pub classes: usize,
}

impl Samples<'_> {
    fn n(&self) -> usize {
        self.y.len()
    }

    fn value(&self, i: usize, f: usize) -> f64 {
        self.x[i * self.d + f] as f64
    }
}

#[derive(Clone, Debug)]
enum Node {
    Split { feature: usize, threshold: f64, left: usize, right: usize },
    Leaf { value: f64 },
}

/// One regression tree.
#[derive(Clone, Debug)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn predict(&self, row: &[f32]) -> f64 {
        let mut at = 0;
        loop {
            match self.nodes[at] {
                Node::Leaf { value } => return value,
                Node::Split { feature, threshold, left, right } => {
                    at = if (row[feature] as f64) <= threshold { left } else { right }
                }
            }
        }
    }
}

/// A fitted classifier and its feature importances.
pub struct GradientBoosting {
    /// Trees per stage: one for two classes, one per class otherwise.
    stages: Vec<Vec<Tree>>,
    init: Vec<f64>,
    classes: usize,
    /// Normalised impurity-based importance of each feature.
    pub importances: Vec<f64>,
}

/// A tree being grown: samples per open node, and the importance each split earns.
struct Growth {
    nodes: Vec<Node>,
    importance: Vec<f64>,
}

/// Statistics of a node's targets.
#[derive(Clone, Copy, Default)]
struct Stats {
    count: f64,
    sum: f64,
    sum_sq: f64,
}

impl Stats {
    fn add(&mut self, t: f64) {
        self.count += 1.0;
        self.sum += t;
        self.sum_sq += t * t;
    }

    /// Mean squared deviation (the node impurity).
    fn impurity(&self) -> f64 {
        let mean = self.sum / self.count;
        (self.sum_sq / self.count - mean * mean).max(0.0)
    }
}

/// The best split of one node: feature, threshold, left statistics and proxy improvement.
#[derive(Clone, Copy)]
struct Candidate {
    feature: usize,
    threshold: f64,
    proxy: f64,
}

impl GradientBoosting {
    /// Fits on `data`; `order[f]` lists the rows sorted by feature f.
    pub fn fit(data: &Samples) -> GradientBoosting {
        let n = data.n();
        let order: Vec<Vec<usize>> = (0..data.d)
            .map(|f| {
                let mut idx: Vec<usize> = (0..n).collect();
                idx.sort_by(|&a, &b| data.value(a, f).total_cmp(&data.value(b, f)));
                idx
            })
            .collect();
        let k_out = if data.classes == 2 { 1 } else { data.classes };
        let init = initial_raw(data);
        let mut raw: Vec<f64> = (0..n).flat_map(|_| init.iter().copied()).collect();
        let mut stages = Vec::with_capacity(STAGES);
        let mut importance_sum = vec![0.0; data.d];
        let mut relevant_trees = 0usize;
        for _ in 0..STAGES {
            let prob = probabilities(&raw, k_out);
            let trees: Vec<(Tree, Vec<f64>, Vec<usize>)> = (0..k_out)
                .into_par_iter()
                .map(|k| {
                    let target = |i: usize| {
                        if data.classes == 2 {
                            usize::from(data.y[i] == 1)
                        } else {
                            usize::from(data.y[i] == k)
                        }
                    };
                    let residual: Vec<f64> =
                        (0..n).map(|i| target(i) as f64 - prob[i * k_out + k]).collect();
                    let (mut growth, leaf_of) = grow(data, &order, &residual);
                    newton_leaves(
                        &mut growth.nodes,
                        &leaf_of,
                        &residual,
                        &prob,
                        k_out,
                        k,
                        data.classes,
                    );
                    (Tree { nodes: growth.nodes }, growth.importance, leaf_of)
                })
                .collect();
            for (k, (tree, importance, leaf_of)) in trees.iter().enumerate() {
                for i in 0..n {
                    if let Node::Leaf { value } = tree.nodes[leaf_of[i]] {
                        raw[i * k_out + k] += LEARNING_RATE * value;
                    }
                }
                if tree.nodes.len() > 1 {
                    relevant_trees += 1;
                    importance_sum.iter_mut().zip(importance).for_each(|(a, b)| *a += b / n as f64);
                }
            }
            stages.push(trees.into_iter().map(|t| t.0).collect());
        }
        let mean: Vec<f64> =
            importance_sum.iter().map(|v| v / relevant_trees.max(1) as f64).collect();
        let total: f64 = mean.iter().sum();
        let importances = mean.iter().map(|v| if total > 0.0 { v / total } else { 0.0 }).collect();
        GradientBoosting { stages, init, classes: data.classes, importances }
    }

    /// Predicted class of each row of `x` (row-major, `d` features).
    pub fn predict(&self, x: &[f32], d: usize) -> Vec<usize> {
        x.chunks_exact(d)
            .map(|row| {
                let mut raw = self.init.clone();
                for stage in &self.stages {
                    for (r, tree) in raw.iter_mut().zip(stage) {
                        *r += LEARNING_RATE * tree.predict(row);
                    }
                }
                if self.classes == 2 {
                    usize::from(raw[0] > 0.0)
                } else {
                    crate::prior::argmax(&raw)
                }
            })
            .collect()
    }
}

/// The prior's raw predictions: the log-odds of class 1, or the log-probabilities.
fn initial_raw(data: &Samples) -> Vec<f64> {
    let eps = f32::EPSILON as f64;
    let mut p = vec![0.0; data.classes];
    data.y.iter().for_each(|&c| p[c] += 1.0 / data.n() as f64);
    let p: Vec<f64> = p.iter().map(|v| v.clamp(eps, 1.0 - eps)).collect();
    if data.classes == 2 {
        vec![(p[1] / (1.0 - p[1])).ln()]
    } else {
        p.iter().map(|v| v.ln()).collect()
    }
}

/// Class probabilities from raw predictions (sigmoid for one output, softmax otherwise).
fn probabilities(raw: &[f64], k_out: usize) -> Vec<f64> {
    if k_out == 1 {
        return raw.iter().map(|r| 1.0 / (1.0 + (-r).exp())).collect();
    }
    raw.chunks_exact(k_out)
        .flat_map(|row| {
            let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = row.iter().map(|r| (r - max).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(move |v| v / s)
        })
        .collect()
}

/// Grows a depth-limited tree on `target`, level by level; returns it with the leaf of each row.
fn grow(data: &Samples, order: &[Vec<usize>], target: &[f64]) -> (Growth, Vec<usize>) {
    let n = data.n();
    let mut growth =
        Growth { nodes: vec![Node::Leaf { value: 0.0 }], importance: vec![0.0; data.d] };
    let mut node_of = vec![0usize; n];
    let mut open = vec![0usize];
    for _depth in 0..MAX_DEPTH {
        let mut totals = vec![Stats::default(); growth.nodes.len()];
        for i in 0..n {
            totals[node_of[i]].add(target[i]);
        }
        let mut splittable = vec![false; growth.nodes.len()];
        for &a in &open {
            splittable[a] = totals[a].count >= 2.0 && totals[a].impurity() > f64::EPSILON;
        }
        let mut best: Vec<Option<Candidate>> = vec![None; growth.nodes.len()];
        for (f, rows) in order.iter().enumerate() {
            // Left-side statistics and the last value seen, per node, in sorted order.
            let mut left = vec![Stats::default(); growth.nodes.len()];
            let mut last = vec![f64::NEG_INFINITY; growth.nodes.len()];
            for &i in rows {
                let a = node_of[i];
                if !splittable[a] {
                    continue;
                }
                let v = data.value(i, f);
                if left[a].count > 0.0 && v > last[a] + FEATURE_THRESHOLD {
                    let (wl, wr) = (left[a].count, totals[a].count - left[a].count);
                    let diff = wr * left[a].sum - wl * (totals[a].sum - left[a].sum);
                    let proxy = diff * diff / (wl * wr);
                    if best[a].is_none_or(|b| proxy > b.proxy) {
                        let mut threshold = last[a] / 2.0 + v / 2.0;
                        if threshold == v || threshold.is_infinite() {
                            threshold = last[a];
                        }
                        best[a] = Some(Candidate { feature: f, threshold, proxy });
                    }
                }
                left[a].add(target[i]);
                last[a] = v;
            }
        }
        let mut next_open = Vec::new();
        let mut children = vec![None; growth.nodes.len()];
        for &a in &open {
            let Some(c) = best[a] else { continue };
            let (l, r) = (growth.nodes.len(), growth.nodes.len() + 1);
            growth.nodes.push(Node::Leaf { value: 0.0 });
            growth.nodes.push(Node::Leaf { value: 0.0 });
            growth.nodes[a] =
                Node::Split { feature: c.feature, threshold: c.threshold, left: l, right: r };
            children[a] = Some((l, r, c));
            next_open.extend([l, r]);
        }
        let mut child_stats = vec![Stats::default(); growth.nodes.len()];
        for i in 0..n {
            if let Some((l, r, c)) = children[node_of[i]] {
                node_of[i] = if data.value(i, c.feature) <= c.threshold { l } else { r };
                child_stats[node_of[i]].add(target[i]);
            }
        }
        for &a in &open {
            if let Some((l, r, c)) = children[a] {
                let (p, sl, sr) = (totals[a], child_stats[l], child_stats[r]);
                growth.importance[c.feature] +=
                    p.count * p.impurity() - sl.count * sl.impurity() - sr.count * sr.impurity();
            }
        }
        open = next_open;
        if open.is_empty() {
            break;
        }
    }
    (growth, node_of)
}

/// Sets each leaf to one Newton step of the log-loss over its rows (scikit-learn's
/// `_update_terminal_regions`), with the (K − 1)/K factor for the multinomial loss.
fn newton_leaves(
    nodes: &mut [Node],
    leaf_of: &[usize],
    residual: &[f64],
    prob: &[f64],
    k_out: usize,
    k: usize,
    classes: usize,
) {
    let mut num = vec![0.0; nodes.len()];
    let mut den = vec![0.0; nodes.len()];
    for (i, &leaf) in leaf_of.iter().enumerate() {
        let p = prob[i * k_out + k];
        num[leaf] += residual[i];
        den[leaf] += p * (1.0 - p);
    }
    let factor = if classes == 2 { 1.0 } else { (classes - 1) as f64 / classes as f64 };
    for (a, node) in nodes.iter_mut().enumerate() {
        if let Node::Leaf { value } = node {
            *value = if den[a] == 0.0 { 0.0 } else { factor * num[a] / den[a] };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_readable_from_one_feature_puts_the_importance_there() {
        // Feature 0 decides the class; feature 1 is noise.
        let n = 300;
        let x: Vec<f32> =
            (0..n).flat_map(|i| [(i % 3) as f32, ((i * 7919) % 101) as f32]).collect();
        let y: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let model = GradientBoosting::fit(&Samples { x: &x, d: 2, y: &y, classes: 3 });
        assert!(model.importances[0] > 0.99, "{:?}", model.importances);
        assert_eq!(model.predict(&x, 2), y);
    }

    #[test]
    fn binary_problems_use_one_tree_per_stage_and_learn_a_threshold() {
        let x: Vec<f32> = (0..200).map(|i| i as f32).collect();
        let y: Vec<usize> = (0..200).map(|i| usize::from(i >= 120)).collect();
        let model = GradientBoosting::fit(&Samples { x: &x, d: 1, y: &y, classes: 2 });
        assert!(model.stages.iter().all(|s| s.len() == 1));
        assert_eq!(model.predict(&[119.0, 120.0, 121.5], 1), vec![0, 1, 1]);
        match &model.stages[0][0].nodes[0] {
            Node::Split { threshold, .. } => assert_eq!(*threshold, 119.5),
            leaf => panic!("root should split: {leaf:?}"),
        }
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let p = probabilities(&[1.0, 2.0, 3.0, -1.0, 0.0, 1.0], 3);
        assert!((p[..3].iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((p[2] - 3f64.exp() / (1f64.exp() + 2f64.exp() + 3f64.exp())).abs() < 1e-12);
    }
}
