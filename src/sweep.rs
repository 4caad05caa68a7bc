//! Grids of runs (SPEC §7): β-VAE over β, FactorVAE over γ, and the AbsAE over its
//! adversarial β, each a run directory under one sweep folder.

use crate::config::{ABSAE, Config};
use crate::{Error, Result};

/// β of the β-VAE sweep.
pub const BETA_VAE_BETAS: [f64; 6] = [1.0, 2.0, 4.0, 6.0, 8.0, 16.0];
/// γ of the FactorVAE sweep.
pub const FACTOR_VAE_GAMMAS: [f64; 6] = [10.0, 20.0, 30.0, 40.0, 50.0, 100.0];
/// The AbsAE's adversarial β (the paper's figure 5 varies it too).
pub const ABSAE_BETAS: [f64; 6] = BETA_VAE_BETAS;

/// One run of a sweep: a model and the value of its swept weight.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepRun {
    pub model: String,
    pub weight: f64,
}

impl SweepRun {
    /// Folder name under the sweep directory, e.g. `beta-vae-beta4`, `factor-vae-gamma10`.
    pub fn name(&self) -> String {
        format!("{}-{}{}", self.model, weight_name(&self.model), self.weight)
    }

    /// `base` with this run's model and weight.
    pub fn config(&self, base: &Config) -> Config {
        let mut config = base.clone();
        config.model = self.model.clone();
        match self.model.as_str() {
            "factor-vae" => config.train.gamma = self.weight,
            _ => config.train.beta = self.weight,
        }
        config
    }
}

/// Name of the weight a sweep varies for `model`: `gamma` for FactorVAE, else `beta`.
pub fn weight_name(model: &str) -> &'static str {
    if model == "factor-vae" { "gamma" } else { "beta" }
}

/// The runs of a sweep over `models` (each one of `absae`, `beta-vae`, `factor-vae`).
pub fn plan(models: &[String]) -> Result<Vec<SweepRun>> {
    let mut runs = Vec::new();
    for model in models {
        let grid: &[f64] = match model.as_str() {
            "beta-vae" => &BETA_VAE_BETAS,
            "factor-vae" => &FACTOR_VAE_GAMMAS,
            m if m == ABSAE => &ABSAE_BETAS,
            other => {
                return Err(Error::Unknown(format!(
                    "unknown model '{other}' (known: {})",
                    crate::config::MODELS.join(", ")
                )));
            }
        };
        runs.extend(grid.iter().map(|&weight| SweepRun { model: model.clone(), weight }));
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_covers_the_spec_grids_with_distinct_names() {
        let runs = plan(&["beta-vae".into(), "factor-vae".into(), "absae".into()]).unwrap();
        assert_eq!(runs.len(), 18);
        let names: std::collections::HashSet<String> = runs.iter().map(SweepRun::name).collect();
        assert_eq!(names.len(), 18);
        assert!(
            names.contains("factor-vae-gamma100")
                && names.contains("beta-vae-beta16")
                && names.contains("absae-beta1")
        );
        assert!(plan(&["vae".into()]).is_err());
    }

    #[test]
    fn run_config_sets_the_right_weight() {
        let base = Config::preset("default", "dsprites").unwrap();
        let c = SweepRun { model: "factor-vae".into(), weight: 30.0 }.config(&base);
        assert_eq!(
            (c.model.as_str(), c.train.gamma, c.train.beta),
            ("factor-vae", 30.0, base.train.beta)
        );
        let c = SweepRun { model: "beta-vae".into(), weight: 8.0 }.config(&base);
        assert_eq!((c.model.as_str(), c.train.beta), ("beta-vae", 8.0));
        c.validate().unwrap();
    }
}
