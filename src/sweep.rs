//! Grids of runs (SPEC §7): β-VAE over β, FactorVAE over γ, and the AbsAE over its
//! adversarial β, each a run directory under one sweep folder.

use crate::config::{Config, ModelKind};

/// β of the β-VAE sweep.
pub const BETA_VAE_BETAS: [f64; 6] = [1.0, 2.0, 4.0, 6.0, 8.0, 16.0];
/// γ of the FactorVAE sweep.
pub const FACTOR_VAE_GAMMAS: [f64; 6] = [10.0, 20.0, 30.0, 40.0, 50.0, 100.0];
/// The AbsAE's adversarial β (the paper's figure 5 varies it too).
pub const ABSAE_BETAS: [f64; 6] = BETA_VAE_BETAS;

/// One run of a sweep: a model and the value of its swept weight.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepRun {
    pub model: ModelKind,
    pub weight: f64,
}

impl SweepRun {
    /// Folder name under the sweep directory, e.g. `beta-vae-beta4`, `factor-vae-gamma10`.
    pub fn name(&self) -> String {
        format!("{}-{}{}", self.model.name(), self.model.weight_name(), self.weight)
    }

    /// `base` with this run's model and weight.
    pub fn config(&self, base: &Config) -> Config {
        let mut config = base.clone();
        config.model = self.model;
        config.set_model_weight(self.weight);
        config
    }
}

/// The runs of a sweep over `models`.
pub fn plan(models: &[ModelKind]) -> Vec<SweepRun> {
    let mut runs = Vec::new();
    for &model in models {
        let grid: &[f64] = match model {
            ModelKind::BetaVae => &BETA_VAE_BETAS,
            ModelKind::FactorVae => &FACTOR_VAE_GAMMAS,
            ModelKind::AbsAe => &ABSAE_BETAS,
        };
        runs.extend(grid.iter().map(|&weight| SweepRun { model, weight }));
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Preset;

    #[test]
    fn plan_covers_the_spec_grids_with_distinct_names() {
        let runs = plan(&ModelKind::ALL);
        assert_eq!(runs.len(), 18);
        let names: std::collections::HashSet<String> = runs.iter().map(SweepRun::name).collect();
        assert_eq!(names.len(), 18);
        assert!(
            names.contains("factor-vae-gamma100")
                && names.contains("beta-vae-beta16")
                && names.contains("absae-beta1")
        );
    }

    #[test]
    fn run_config_sets_the_right_weight() {
        let base = Config::preset(Preset::Default, "dsprites").unwrap();
        let c = SweepRun { model: ModelKind::FactorVae, weight: 30.0 }.config(&base);
        assert_eq!(
            (c.model, c.factor_vae.gamma, c.train.gamma, c.model_weight()),
            (ModelKind::FactorVae, 30.0, base.train.gamma, 30.0)
        );
        let c = SweepRun { model: ModelKind::BetaVae, weight: 8.0 }.config(&base);
        assert_eq!(
            (c.model, c.beta_vae.beta, c.train.beta),
            (ModelKind::BetaVae, 8.0, base.train.beta)
        );
        let c = SweepRun { model: ModelKind::AbsAe, weight: 4.0 }.config(&base);
        assert_eq!(c.train.beta, 4.0);
        c.validate().unwrap();
    }
}
