//! `talosctl gen secureboot uki|pcr|database`: the Secure Boot signing keys and the UEFI
//! database that enrols the UKI signing certificate, under upstream's file names in the
//! output folder (`_out` by default). Existing files are never overwritten.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use secureboot::SigningKey;

use crate::output::FileSet;

/// Upstream's default folder for generated artifacts.
const ARTIFACTS: &str = "_out";
const UKI_KEY: &str = "uki-signing-key.pem";
const UKI_CERT: &str = "uki-signing-cert.pem";
const UKI_CERT_DER: &str = "uki-signing-cert.der";
const PCR_KEY: &str = "pcr-signing-key.pem";

#[derive(Debug, Args)]
pub struct SecureBootArgs {
    /// path to the directory storing the generated files
    #[arg(short = 'o', long = "output", default_value = ARTIFACTS, global = true)]
    pub output: PathBuf,
    #[command(subcommand)]
    pub command: SecureBootCommand,
}

#[derive(Debug, Subcommand)]
pub enum SecureBootCommand {
    /// Generates a certificate which is used to sign boot assets (UKI)
    Uki(UkiArgs),
    /// Generates a key which is used to sign TPM PCR values
    Pcr,
    /// Generates a UEFI database to enroll the signing certificate
    Database(DatabaseArgs),
}

#[derive(Debug, Args)]
pub struct UkiArgs {
    /// common name for the certificate
    #[arg(long = "common-name", default_value = "Test UKI Signing Key")]
    pub common_name: String,
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// path to the certificate to enroll
    #[arg(
        long = "enrolled-certificate",
        default_value = "_out/uki-signing-cert.pem"
    )]
    pub enrolled_certificate: PathBuf,
    /// path to the certificate used to sign the database
    #[arg(
        long = "signing-certificate",
        default_value = "_out/uki-signing-cert.pem"
    )]
    pub signing_certificate: PathBuf,
    /// path to the key used to sign the database
    #[arg(long = "signing-key", default_value = "_out/uki-signing-key.pem")]
    pub signing_key: PathBuf,
}

pub fn run(args: SecureBootArgs) -> anyhow::Result<()> {
    let mut files = FileSet::default();
    let output = args.output.clone();
    match args.command {
        SecureBootCommand::Uki(uki) => {
            let key = SigningKey::generate(&uki.common_name, 4096)?;
            files.add(args.output.join(UKI_CERT), key.cert_pem, 0o600);
            files.add(args.output.join(UKI_CERT_DER), key.cert_der, 0o600);
            files.add(args.output.join(UKI_KEY), key.key_pem, 0o600);
        }
        SecureBootCommand::Pcr => {
            let key = SigningKey::generate("dummy", 2048)?;
            files.add(args.output.join(PCR_KEY), key.key_pem, 0o600);
        }
        SecureBootCommand::Database(database) => {
            let signer = SigningKey::from_pem(
                &read(&database.signing_key)?,
                &read(&database.signing_certificate)?,
            )
            .with_context(|| {
                format!(
                    "loading the signing key {} with certificate {}",
                    database.signing_key.display(),
                    database.signing_certificate.display()
                )
            })?;
            let enrolled = secureboot::certificate_der(&read(&database.enrolled_certificate)?)
                .with_context(|| format!("reading {}", database.enrolled_certificate.display()))?;
            let variables =
                secureboot::database(&enrolled, &signer, time::OffsetDateTime::now_utc())
                    .with_context(|| {
                        format!("enrolling {}", database.enrolled_certificate.display())
                    })?;
            for variable in variables {
                files.add(
                    args.output.join(variable.variable.file_name()),
                    variable.contents,
                    0o600,
                );
            }
        }
    }
    for path in files.paths() {
        anyhow::ensure!(
            path.symlink_metadata().is_err(),
            "{} already exists: remove it or choose another --output than {}",
            path.display(),
            output.display()
        );
    }
    files.write(false)
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
