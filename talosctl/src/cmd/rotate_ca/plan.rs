//! The config changes of a CA rotation as plain functions of a node's config: one [`Rotation`]
//! per authority, applied [`Step`] by [`Step`] in upstream's order (accept the new CA, make it
//! the issuer with the old one accepted, drop the old one).

use anyhow::Context as _;
use machineconfig::Config;
use pki::{PemCertificate, PemCertificateAndKey};

/// Which CA a rotation replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authority {
    /// The Talos API CA: `machine.ca` and `machine.acceptedCAs`.
    Talos,
    /// The Kubernetes CA: `cluster.ca` and `cluster.acceptedCAs`.
    Kubernetes,
}

impl Authority {
    /// The config section holding this CA, for messages.
    pub fn section(self) -> &'static str {
        match self {
            Authority::Talos => "machine",
            Authority::Kubernetes => "cluster",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Authority::Talos => "Talos API",
            Authority::Kubernetes => "Kubernetes API",
        }
    }

    /// The issuing CA and the accepted CAs of `config`.
    fn fields(
        self,
        config: &mut Config,
    ) -> anyhow::Result<(&mut Option<PemCertificateAndKey>, &mut Vec<PemCertificate>)> {
        let v1alpha1 = config
            .v1alpha1
            .as_mut()
            .context("the config has no v1alpha1 document")?;
        match self {
            Authority::Talos => {
                let machine = v1alpha1
                    .machine
                    .as_mut()
                    .context("the config has no machine section")?;
                Ok((&mut machine.ca, &mut machine.accepted_cas))
            }
            Authority::Kubernetes => {
                let cluster = v1alpha1
                    .cluster
                    .as_mut()
                    .context("the config has no cluster section")?;
                Ok((&mut cluster.ca, &mut cluster.accepted_cas))
            }
        }
    }

    /// The certificate of the issuing CA in `config`.
    pub fn issuing_certificate(self, config: &Config) -> anyhow::Result<String> {
        let mut config = config.clone();
        let (ca, _) = self.fields(&mut config)?;
        ca.as_ref()
            .and_then(|ca| ca.crt.clone())
            .with_context(|| format!("the config has no {}.ca.crt", self.section()))
    }
}

/// One step of a rotation, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Add the new CA to the accepted CAs.
    Accept,
    /// Make the new CA the issuer (with its key where the old one had a key), keep the old one
    /// accepted.
    Swap,
    /// Remove the old CA from the accepted CAs.
    Drop,
}

impl Step {
    /// What the step does, for the progress lines.
    pub fn describe(self, authority: Authority) -> String {
        let section = authority.section();
        match self {
            Step::Accept => format!("adding the new CA to {section}.acceptedCAs"),
            Step::Swap => {
                format!("making the new CA the issuer ({section}.ca), the old one accepted")
            }
            Step::Drop => format!("removing the old CA from {section}.acceptedCAs"),
        }
    }
}

/// Replacing one CA by another.
#[derive(Clone, Debug)]
pub struct Rotation {
    pub authority: Authority,
    /// PEM of the CA being replaced.
    pub old: String,
    /// The new CA with its key.
    pub new: PemCertificateAndKey,
}

impl Rotation {
    /// Changes `config` as `step` says. Running a step twice changes nothing more.
    pub fn apply(&self, step: Step, config: &mut Config) -> anyhow::Result<()> {
        let new_crt = self
            .new
            .crt
            .clone()
            .context("the new CA has no certificate")?;
        let (ca, accepted) = self.authority.fields(config)?;
        match step {
            Step::Accept => add(accepted, &new_crt),
            Step::Swap => {
                let had_key = ca.as_ref().is_some_and(|ca| ca.key.is_some());
                *ca = Some(PemCertificateAndKey {
                    crt: Some(new_crt.clone()),
                    key: self.new.key.clone().filter(|_| had_key),
                });
                accepted.retain(|c| !same(c, &new_crt));
                add(accepted, &self.old);
            }
            Step::Drop => accepted.retain(|c| !same(c, &self.old)),
        }
        Ok(())
    }
}

fn add(accepted: &mut Vec<PemCertificate>, crt: &str) {
    if !accepted.iter().any(|c| same(c, crt)) {
        accepted.push(PemCertificate {
            crt: Some(crt.to_string()),
        });
    }
}

fn same(accepted: &PemCertificate, crt: &str) -> bool {
    accepted.crt.as_deref().map(str::trim) == Some(crt.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(kind: pki::CaKind) -> PemCertificateAndKey {
        pki::generate_ca(kind, pki::Validity::from_now(pki::CA_TTL)).unwrap()
    }

    fn config(control_plane: bool) -> Config {
        let bundle = pki::SecretsBundle::generate().unwrap();
        let spec = machineconfig::generate::ClusterSpec::new("test", "https://10.5.0.2:6443");
        if control_plane {
            machineconfig::generate::controlplane(&bundle, &spec).unwrap()
        } else {
            machineconfig::generate::worker(&bundle, &spec).unwrap()
        }
    }

    fn accepted(config: &Config, authority: Authority) -> Vec<String> {
        let mut config = config.clone();
        let (_, accepted) = authority.fields(&mut config).unwrap();
        accepted.iter().filter_map(|c| c.crt.clone()).collect()
    }

    fn issuer(config: &Config, authority: Authority) -> PemCertificateAndKey {
        let mut config = config.clone();
        let (ca, _) = authority.fields(&mut config).unwrap();
        ca.clone().unwrap()
    }

    #[test]
    fn the_steps_accept_swap_and_drop_in_order() {
        for (authority, kind) in [
            (Authority::Talos, pki::CaKind::Talos),
            (Authority::Kubernetes, pki::CaKind::Kubernetes),
        ] {
            for control_plane in [true, false] {
                let mut config = config(control_plane);
                let old = issuer(&config, authority);
                let rotation = Rotation {
                    authority,
                    old: authority.issuing_certificate(&config).unwrap(),
                    new: ca(kind),
                };
                let new_crt = rotation.new.crt.clone().unwrap();

                rotation.apply(Step::Accept, &mut config).unwrap();
                rotation.apply(Step::Accept, &mut config).unwrap();
                assert_eq!(accepted(&config, authority), std::slice::from_ref(&new_crt));
                assert_eq!(issuer(&config, authority), old);

                rotation.apply(Step::Swap, &mut config).unwrap();
                assert_eq!(accepted(&config, authority), [old.crt.clone().unwrap()]);
                let swapped = issuer(&config, authority);
                assert_eq!(swapped.crt, Some(new_crt.clone()));
                // Only the nodes that held the old key get the new one.
                assert_eq!(swapped.key.is_some(), old.key.is_some(), "{authority:?}");

                rotation.apply(Step::Drop, &mut config).unwrap();
                assert!(accepted(&config, authority).is_empty());
                assert_eq!(issuer(&config, authority).crt, Some(new_crt));
            }
        }
    }

    #[test]
    fn a_config_without_the_section_is_an_error_naming_it() {
        let mut config = config(true);
        config.v1alpha1.as_mut().unwrap().cluster = None;
        let error = Authority::Kubernetes
            .issuing_certificate(&config)
            .unwrap_err();
        assert_eq!(error.to_string(), "the config has no cluster section");
        config.v1alpha1 = None;
        let error = Authority::Talos.issuing_certificate(&config).unwrap_err();
        assert_eq!(error.to_string(), "the config has no v1alpha1 document");
    }
}
