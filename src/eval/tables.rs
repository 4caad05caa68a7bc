//! The evaluation tables as Markdown, with the paper's numbers beside ours.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::EvalReport;
use super::probe::{NEIGHBOURS, PROBE_IMAGES};
use super::relational::ImageCeiling;
use crate::tasks::{self, PaperNumbers};

fn cell(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "–".into())
}

/// Classification, per-factor, relational, disentanglement and reconstruction tables (a
/// baseline's report has only the last two).
pub fn markdown(report: &EvalReport) -> String {
    let mut out = String::new();
    let temperature =
        report.posterior_temperature.map(|t| format!(" at temperature {t}")).unwrap_or_default();
    let method = if report.alpha_rule.is_empty() {
        String::new()
    } else {
        format!(", τ = {}, α rule `{}`{temperature}", report.tau, report.alpha_rule)
    };
    let _ = writeln!(
        out,
        "Task `{}`, model `{}`, preset `{}`{method}, data: {}; {} test images; trained {} steps in {:.0} s on {}.\n",
        report.task,
        report.model,
        report.preset,
        report.data,
        report.test_images,
        report.train.steps,
        report.train.seconds,
        report.train.backend
    );
    let paper = tasks::paper::for_task(&report.task);
    if !report.classification.is_empty() {
        method_tables(report, paper, &mut out);
    }
    if let Some(d) = &report.disentanglement {
        let paper = paper.and_then(|p| p.disentanglement(&report.model));
        let of = if report.classification.is_empty() {
            "latent means"
        } else {
            "predicted components' factor classes"
        };
        let _ = writeln!(out, "\nDisentanglement of the {of} (paper: table 1)\n");
        let _ = writeln!(
            out,
            "| | DCI D | DCI C | DCI I | DCI mean | MIG | SAP |\n|---|---|---|---|---|---|---|"
        );
        let _ = writeln!(
            out,
            "| ours | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            d.dci.disentanglement,
            d.dci.completeness,
            d.dci.informativeness,
            d.dci.mean,
            d.mig,
            d.sap
        );
        if let Some((dci, mig, sap)) = paper {
            let _ = writeln!(out, "| paper | – | – | – | {dci:.3} | {mig:.3} | {sap:.3} |");
        }
    }
    let rec = &report.reconstruction;
    let _ = writeln!(
        out,
        "\nReconstruction on the test split: BCE {:.2} per image, MSE {:.5} per pixel.",
        rec.bce_per_image, rec.mse_per_pixel
    );
    ood_table(report, &mut out);
    out
}

/// Out-of-distribution detection: each source's AUROC against the test split, every
/// candidate score's, and the share the α rule rejects at α = 0.5 and 0.9.
fn ood_table(report: &EvalReport, out: &mut String) {
    let Some(first) = report.ood.first() else { return };
    let score = report.ood_reference.as_ref().map_or("", |r| r.score.as_str());
    let names: Vec<&String> = first.candidates.keys().collect();
    let _ = writeln!(
        out,
        "\nOut-of-distribution sources against the test split (AUROC; the score used is `{score}`)\n"
    );
    let header: Vec<String> = names.iter().map(|n| format!("AUROC {n}")).collect();
    let _ =
        writeln!(out, "| source | images | {} | rejected at α = 0.5 / 0.9 |", header.join(" | "));
    let _ = writeln!(out, "|---|---|{}---|", "---|".repeat(names.len()));
    for o in &report.ood {
        let aurocs: Vec<String> =
            names.iter().map(|n| format!("{:.3}", o.candidates[*n])).collect();
        let at =
            |alpha: f64| o.rejected.iter().find(|r| r.alpha == alpha).map_or(f64::NAN, |r| r.ratio);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.3} / {:.3} |",
            o.source,
            o.images,
            aurocs.join(" | "),
            at(0.5),
            at(0.9)
        );
    }
}

/// The AbsAE's own tables: classification under the α rule, per-factor accuracy, relations.
fn method_tables(report: &EvalReport, paper: Option<&PaperNumbers>, out: &mut String) {
    let _ = writeln!(
        out,
        "Latent classification (paper: table 4, τ = {}, official data)\n",
        report.tau
    );
    let _ = writeln!(
        out,
        "| α | accuracy | accepted | paper accuracy | paper accepted |\n|---|---|---|---|---|"
    );
    for r in &report.classification {
        let p = paper.and_then(|p| p.classification(report.tau, r.alpha));
        let _ = writeln!(
            out,
            "| {:.1} | {} | {:.3} | {} | {} |",
            r.alpha,
            cell(r.accuracy),
            r.accepted_ratio,
            cell(p.map(|p| p.0)),
            cell(p.map(|p| p.1))
        );
    }
    let factors: Vec<String> =
        report.factor_accuracy.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
    let _ = writeln!(out, "\nPer-factor accuracy at α = 0: {}\n", factors.join(", "));
    if let Some(b) = &report.baseline {
        let _ = writeln!(
            out,
            "Without the unlabelled images — {} on the same {} labelled images: accuracy {:.3} on the {} test images.\n",
            b.method, b.train_images, b.accuracy, b.test_images
        );
    }
    let _ = writeln!(out, "Relational accuracy from prior samples (paper: table 5)\n");
    let _ = writeln!(
        out,
        "| depth | α | accuracy | accepted | paper accuracy | paper accepted |\n|---|---|---|---|---|---|"
    );
    for r in &report.relational {
        let p = paper.and_then(|p| p.relational(r.depth, r.alpha));
        let _ = writeln!(
            out,
            "| {} | {:.1} | {} | {:.3} | {} | {} |",
            r.depth,
            r.alpha,
            cell(r.accuracy),
            r.accepted_ratio,
            cell(p.map(|p| p.0)),
            cell(p.map(|p| p.1))
        );
    }
    if !report.relational_images.is_empty() {
        let _ = writeln!(
            out,
            "\nRelational accuracy from encoded test images, judged by re-encoding the decoded result\n"
        );
        let pixels =
            if report.relational_images.iter().any(|r| r.mse.is_some()) { "MSE" } else { "IoU" };
        let _ = writeln!(
            out,
            "| depth | α | accuracy | accepted | start read right | accuracy from those | moved codes read right | judged by pixels | nuisances kept | {pixels} with the counterfactual |\n|---|---|---|---|---|---|---|---|---|---|"
        );
        for r in &report.relational_images {
            let _ = writeln!(
                out,
                "| {} | {:.1} | {} | {:.3} | {} | {} | {} | {} | {} | {} |",
                r.depth,
                r.alpha,
                cell(r.accuracy),
                r.accepted_ratio,
                cell(r.start_read_right),
                cell(r.accuracy_when_start_read_right),
                cell(r.code_accuracy),
                cell(r.judged_accuracy),
                cell(r.nuisance_kept),
                cell(r.iou.or(r.mse))
            );
        }
        if let Some(c) = &report.relational_images_ceiling {
            let _ = writeln!(
                out,
                "| plain reconstruction (ceiling) | 0.0 | {:.3} | 1.000 | – | – | – | {} | {} | {} |",
                c.accuracy,
                cell(Some(c.judged_accuracy)),
                cell(c.nuisance_kept),
                cell(c.iou.or(c.mse))
            );
            nuisance_lines(out, report, c);
        }
        relation_lines(out, report);
    }
}

/// The depth-1 image-level row split by the relation each chain applied, each nuisance kept by
/// itself beside it.
fn relation_lines(out: &mut String, report: &EvalReport) {
    let Some(row) = report.relational_images.iter().find(|r| r.depth == 1 && r.alpha == 0.0) else {
        return;
    };
    if row.by_relation.is_empty() {
        return;
    }
    let pixels = if row.mse.is_some() { "MSE" } else { "IoU" };
    let factors: Vec<&String> = row.nuisance_kept_by_factor.keys().collect();
    let kept: String = factors.iter().map(|f| format!(" {f} kept |")).collect();
    let _ = writeln!(
        out,
        "
Depth 1 by relation (α = 0):

| relation | chains | accuracy | moved codes read right | judged by pixels | nuisances kept |{kept} {pixels} |
|---|---|---|---|---|---|{}---|",
        "---|".repeat(factors.len())
    );
    for (name, r) in &row.by_relation {
        let kept: String = kept_cells(&factors, &r.nuisance_kept_by_factor)
            .iter()
            .map(|c| format!(" {c} |"))
            .collect();
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} |{kept} {} |",
            r.chains.unwrap_or(0),
            cell(r.accuracy),
            cell(r.code_accuracy),
            cell(r.judged_accuracy),
            cell(r.nuisance_kept),
            cell(r.iou.or(r.mse))
        );
    }
}

/// What the nuisance probe reads in test images' codes, and each nuisance kept by itself at
/// every depth and by a plain reconstruction.
fn nuisance_lines(out: &mut String, report: &EvalReport, ceiling: &ImageCeiling) {
    if ceiling.nuisance_probe.is_empty() {
        return;
    }
    let read: Vec<String> = ceiling
        .nuisance_probe
        .iter()
        .map(|p| format!("{} {:.3} (chance {:.3})", p.factor, p.accuracy, p.chance))
        .collect();
    let _ = writeln!(
        out,
        "\nThe nuisance probe ({NEIGHBOURS} nearest of {PROBE_IMAGES} training images' codes) reads in test images' codes: {}.\n",
        read.join(", ")
    );
    let factors: Vec<&String> = ceiling.nuisance_kept_by_factor.keys().collect();
    let header: Vec<String> = factors.iter().map(|f| format!("{f} kept")).collect();
    let _ =
        writeln!(out, "| depth | {} |\n|---|{}", header.join(" | "), "---|".repeat(factors.len()));
    let kept = |by: &BTreeMap<String, f64>| kept_cells(&factors, by).join(" | ");
    for r in report.relational_images.iter().filter(|r| !r.nuisance_kept_by_factor.is_empty()) {
        let _ = writeln!(out, "| {} | {} |", r.depth, kept(&r.nuisance_kept_by_factor));
    }
    let _ = writeln!(out, "| plain reconstruction | {} |", kept(&ceiling.nuisance_kept_by_factor));
}

/// The share kept of each nuisance factor of `factors`, as table cells.
fn kept_cells(factors: &[&String], by: &BTreeMap<String, f64>) -> Vec<String> {
    factors.iter().map(|f| cell(by.get(*f).copied())).collect()
}
