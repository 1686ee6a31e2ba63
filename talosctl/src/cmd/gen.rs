//! `talosctl gen …`: secrets bundles, cluster configs and raw PKI material.

pub(crate) mod cluster_config;
pub(crate) mod secureboot;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use pki::{CertificateAuthority, CertificateRequest, PrivateKey, SecretsBundle, Validity};

use crate::output::FileSet;

pub use cluster_config::ConfigArgs;

#[derive(Debug, Subcommand)]
pub enum GenCommand {
    /// Generates a secrets bundle file which can later be used to generate a config
    Secrets(SecretsArgs),
    /// Generates a set of configuration files for Talos cluster
    Config(Box<ConfigArgs>),
    /// Generates a self-signed X.509 certificate authority
    Ca(CaArgs),
    /// Generates an Ed25519 private key
    Key(KeyArgs),
    /// Generates a CSR using an Ed25519 private key
    Csr(CsrArgs),
    /// Generates an X.509 Ed25519 certificate
    Crt(CrtArgs),
    /// Generates an X.509 Ed25519 key pair
    Keypair(KeypairArgs),
    /// Generates secrets for the SecureBoot process
    Secureboot(secureboot::SecureBootArgs),
}

#[derive(Debug, Args)]
pub struct SecretsArgs {
    /// Path of the output file
    #[arg(short = 'o', long = "output-file", default_value = "secrets.yaml")]
    pub output_file: PathBuf,
    /// Overwrite the output file if it exists
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CaArgs {
    /// X.509 distinguished name for the Organization
    #[arg(long, required = true)]
    pub organization: String,
    /// The hours from now on which the certificate validity period ends
    #[arg(long, default_value_t = 87600)]
    pub hours: i64,
    /// Overwrite existing files
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The basename of the generated file
    #[arg(long, required = true)]
    pub name: String,
    /// Overwrite existing files
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CsrArgs {
    /// The path to the PEM encoded private key
    #[arg(long, required = true)]
    pub key: PathBuf,
    /// Generate the certificate for this IP address
    #[arg(long, required = true)]
    pub ip: IpAddr,
    /// Roles
    #[arg(long, value_delimiter = ',', default_value = "os:admin")]
    pub roles: Vec<String>,
    /// Overwrite existing files
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CrtArgs {
    /// Path to the CA (its certificate `<ca>.crt` and key `<ca>.key`)
    #[arg(long, required = true)]
    pub ca: PathBuf,
    /// The path to the CSR
    #[arg(long, required = true)]
    pub csr: PathBuf,
    /// The basename of the generated file
    #[arg(long, required = true)]
    pub name: String,
    /// The hours from now on which the certificate validity period ends
    #[arg(long, default_value_t = 24)]
    pub hours: i64,
    /// Overwrite existing files
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct KeypairArgs {
    /// X.509 distinguished name for the Organization
    #[arg(long, required = true)]
    pub organization: String,
    /// Generate the certificate for this IP address
    #[arg(long)]
    pub ip: Option<IpAddr>,
    /// Overwrite existing files
    #[arg(long)]
    pub force: bool,
}

/// How long a `gen keypair` certificate is valid: upstream's default certificate lifetime.
const KEYPAIR_HOURS: i64 = 365 * 24;

pub fn run(cmd: GenCommand) -> anyhow::Result<()> {
    match cmd {
        GenCommand::Secrets(args) => {
            let bundle = SecretsBundle::generate()?;
            let mut files = FileSet::default();
            files.add(args.output_file, bundle.to_yaml()?, 0o600);
            files.write(args.force)
        }
        GenCommand::Config(args) => cluster_config::run(*args),
        GenCommand::Secureboot(args) => secureboot::run(args),
        GenCommand::Ca(args) => {
            let ca = pki::generate_ca_for_organization(
                &args.organization,
                &pki::SubjectAltNames::default(),
                validity(args.hours)?,
            )?;
            let (crt, key) = (ca.crt.unwrap_or_default(), ca.key.unwrap_or_default());
            let fingerprint = pki::CertificateInfo::from_pem(&crt)?.sha256_fingerprint;
            let mut files = FileSet::default();
            files.add(format!("{}.crt", args.organization).into(), crt, 0o644);
            files.add(
                format!("{}.sha256", args.organization).into(),
                fingerprint,
                0o644,
            );
            files.add(format!("{}.key", args.organization).into(), key, 0o600);
            files.write(args.force)
        }
        GenCommand::Keypair(args) => {
            // As upstream: a self-signed CA certificate and its key, named after the
            // organization, optionally valid for one IP address.
            let sans = pki::SubjectAltNames {
                ip_addresses: args.ip.into_iter().collect(),
                ..Default::default()
            };
            let pair = pki::generate_ca_for_organization(
                &args.organization,
                &sans,
                validity(KEYPAIR_HOURS)?,
            )?;
            let mut files = FileSet::default();
            let (crt, key) = (pair.crt.unwrap_or_default(), pair.key.unwrap_or_default());
            files.add(format!("{}.crt", args.organization).into(), crt, 0o600);
            files.add(format!("{}.key", args.organization).into(), key, 0o600);
            files.write(args.force)
        }
        GenCommand::Key(args) => {
            let key = PrivateKey::generate_ed25519()?;
            let mut files = FileSet::default();
            files.add(format!("{}.key", args.name).into(), key.to_pem(), 0o600);
            files.write(args.force)
        }
        GenCommand::Csr(args) => {
            let key = PrivateKey::from_pem(&read(&args.key)?)
                .with_context(|| format!("loading key {}", args.key.display()))?;
            let request = CertificateRequest {
                roles: args.roles,
                subject_alt_names: pki::SubjectAltNames {
                    ip_addresses: vec![args.ip],
                    ..Default::default()
                },
                extended_key_usages: vec![pki::ExtendedKeyUsage::ClientAuth],
                ..Default::default()
            };
            let csr = pki::generate_csr(&key, &request)?;
            let mut files = FileSet::default();
            files.add(args.key.with_extension("csr"), csr, 0o644);
            files.write(args.force)
        }
        GenCommand::Crt(args) => {
            let base = strip_extension(&args.ca, "crt");
            let (crt_path, key_path) = (base.with_extension("crt"), base.with_extension("key"));
            let ca = CertificateAuthority::from_pem(&read(&crt_path)?, &read(&key_path)?)
                .with_context(|| format!("loading CA {}", crt_path.display()))?;
            let crt = ca
                .sign_csr(&read(&args.csr)?, validity(args.hours)?)
                .with_context(|| format!("signing {}", args.csr.display()))?;
            let mut files = FileSet::default();
            files.add(format!("{}.crt", args.name).into(), crt, 0o644);
            files.write(args.force)
        }
    }
}

fn validity(hours: i64) -> anyhow::Result<Validity> {
    anyhow::ensure!(hours > 0, "--hours must be positive, got {hours}");
    Ok(Validity::from_now(time::Duration::hours(hours)))
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// `ca.crt` → `ca`; `ca` stays `ca` (upstream takes the CA path without extension).
fn strip_extension(path: &Path, extension: &str) -> PathBuf {
    match path.extension() {
        Some(ext) if ext == extension => path.with_extension(""),
        _ => path.to_path_buf(),
    }
}
