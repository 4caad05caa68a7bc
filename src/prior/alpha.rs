//! α rules: the paper's acceptance threshold on where a code lands (α = 0 accepts all).

/// Which codes the α threshold accepts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AlphaRule {
    /// max_k p(k | z) ≥ α: scale-free. The posterior is taken at a `temperature` T,
    /// p(k | z) ∝ N(z; μ_k, Σ_k)^(1/T): T = 1 is the mixture's own posterior, and T = 1/shrink
    /// is the posterior under the unshrunk covariance of the codes the mixture was fitted to.
    Posterior { temperature: f64 },
    /// max_k N(z; μ_k, Σ_k) ≥ α: what the authors' code does.
    Density,
}

impl AlphaRule {
    /// The rule's name.
    pub fn name(self) -> &'static str {
        match self {
            AlphaRule::Posterior { .. } => "posterior",
            AlphaRule::Density => "density",
        }
    }

    /// The posterior's temperature (1 for the density rule, whose posterior is only shown).
    pub fn temperature(self) -> f64 {
        match self {
            AlphaRule::Posterior { temperature } => temperature,
            AlphaRule::Density => 1.0,
        }
    }

    /// The score the threshold is compared with, from all components' log-densities.
    pub fn score(self, log_densities: &[f64]) -> f64 {
        match self {
            AlphaRule::Density => {
                log_densities.iter().cloned().fold(f64::NEG_INFINITY, f64::max).exp()
            }
            AlphaRule::Posterior { temperature } => max_posterior(log_densities, temperature),
        }
    }

    /// Whether a code with these log-densities is accepted at threshold `alpha`.
    pub fn accepts(self, log_densities: &[f64], alpha: f64) -> bool {
        alpha <= 0.0 || self.score(log_densities) >= alpha
    }
}

/// max_k p(k | z) at `temperature` for equally weighted components, from their log-densities.
pub fn max_posterior(log_densities: &[f64], temperature: f64) -> f64 {
    let max = log_densities.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    1.0 / log_densities.iter().map(|l| ((l - max) / temperature).exp()).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_rules_follow_their_definitions() {
        let ld = [0.4f64.ln(), 0.25f64.ln(), 0.25f64.ln()];
        let dens: Vec<f64> = ld.iter().map(|l| l.exp()).collect();
        let posterior = dens[0] / dens.iter().sum::<f64>();
        let rule = AlphaRule::Posterior { temperature: 1.0 };
        assert!((rule.score(&ld) - posterior).abs() < 1e-12);
        assert!((AlphaRule::Density.score(&ld) - dens[0]).abs() < 1e-12);
        assert!(rule.accepts(&ld, 0.0));
        assert!(rule.accepts(&ld, posterior - 1e-9));
        assert!(!rule.accepts(&ld, posterior + 1e-9));
        assert!(!AlphaRule::Density.accepts(&ld, 0.5));
    }

    #[test]
    fn a_posterior_temperature_is_the_posterior_of_the_widened_gaussians() {
        // Two 1-D unit Gaussians at ±1; T = 4 must equal the posterior with variance 4.
        let z = 0.7;
        let log_density = |mu: f64, var: f64| {
            -0.5 * ((z - mu) * (z - mu) / var + (2.0 * std::f64::consts::PI * var).ln())
        };
        let widened = [log_density(1.0, 4.0), log_density(-1.0, 4.0)];
        let expected = 1.0 / (1.0 + (widened[1] - widened[0]).exp());
        let unit = [log_density(1.0, 1.0), log_density(-1.0, 1.0)];
        let warm = AlphaRule::Posterior { temperature: 4.0 }.score(&unit);
        assert!((warm - expected).abs() < 1e-12);
        assert!(
            warm < AlphaRule::Posterior { temperature: 1.0 }.score(&unit),
            "a higher temperature is less confident"
        );
    }
}
