//! The training progress bar: step, ETA and the current losses.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use relatent::train::{Progress, StepLosses};

pub struct TrainingBar {
    bar: ProgressBar,
}

impl TrainingBar {
    pub fn new(quiet: bool) -> TrainingBar {
        let bar = ProgressBar::with_draw_target(
            Some(0),
            if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
            )
            .expect("the template is valid"),
        );
        TrainingBar { bar }
    }

    pub fn finish(&self) {
        self.bar.finish();
    }
}

fn show(name: &str, v: Option<f32>) -> Option<String> {
    v.map(|v| format!("{name} {v:.3}"))
}

impl Progress for TrainingBar {
    fn step(&mut self, step: usize, total: usize, l: &StepLosses) {
        self.bar.set_length(total as u64);
        self.bar.set_position(step as u64);
        let parts: Vec<String> = [
            show("recon", l.recon),
            show("adv", l.adversarial),
            show("disc", l.discriminator),
            show("sup", l.supervised),
            show("cons", l.consistency),
            show("cycle", l.cycle),
            show("rcycle", l.reconstruction_cycle),
            show("rel", l.relational),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.bar.set_message(parts.join(" "));
    }
}
