//! Signing the image's artifacts in cosign's formats, and checking them.
//!
//! - `cargo xtask keys [--force]` makes a development key pair: `_out/keys/cosign.key` (PEM
//!   PKCS#8, mode 0600; what `cosign import-key-pair` takes) and `_out/keys/cosign.pub` (PEM
//!   PKIX, as `cosign.pub`). `cargo xtask image` makes one too when none exists, bakes the
//!   public key into the SquashFS (machined's default key for upgrades), signs every artifact
//!   of `SHA256SUMS` and `SHA256SUMS` itself (`NAME.sig`, as `cosign sign-blob
//!   --output-signature`) and signs the installer's manifest inside it (as `cosign sign`).
//! - `cargo xtask verify [--key FILE] [--node ADDR [--endpoint E] [--talosconfig F]]` checks
//!   those signatures, the digests in `SHA256SUMS` and the installer's signature; with
//!   `--node`, that the node's `BootArtifacts` equal the signed `SHA256SUMS`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::bench::workspace_root;
use crate::image::{Outputs, sha256_hex};

/// Where the key pair is kept (ignored by git, as all of `_out`).
const KEYS_DIR: &str = "_out/keys";
const PRIVATE_KEY: &str = "cosign.key";
const PUBLIC_KEY: &str = "cosign.pub";
/// Where the image carries the public key; machined's default for upgrades reads it there.
pub const IMAGE_PUBLIC_KEY: &str = "usr/share/talos-rs/cosign.pub";
/// The digest list the build writes and signs.
const SUMS: &str = "SHA256SUMS";
/// The boot artifacts a node publishes, by their names in [`SUMS`].
const BOOT_ARTIFACTS: [&str; 3] = ["vmlinuz", "initramfs.img", "rootfs.sqsh"];

/// `cargo xtask keys [--force]`.
pub fn run_keys(args: &[String]) -> anyhow::Result<()> {
    let force = match args {
        [] => false,
        [flag] if flag == "--force" => true,
        _ => bail!("usage: cargo xtask keys [--force]"),
    };
    let dir = workspace_root().join(KEYS_DIR);
    if dir.join(PRIVATE_KEY).exists() && !force {
        bail!(
            "{} exists; `cargo xtask keys --force` replaces it (images signed with it will not \
             verify with the new key)",
            dir.join(PRIVATE_KEY).display()
        );
    }
    let key = create(&dir)?;
    println!(
        "keys: {} and {} (key {})",
        dir.join(PRIVATE_KEY).display(),
        dir.join(PUBLIC_KEY).display(),
        key.public_key().fingerprint()
    );
    Ok(())
}

fn create(dir: &Path) -> anyhow::Result<cosign::SigningKey> {
    std::fs::create_dir_all(dir)?;
    let key = cosign::SigningKey::generate()?;
    let private = dir.join(PRIVATE_KEY);
    std::fs::write(&private, key.to_pem())?;
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600))?;
    std::fs::write(dir.join(PUBLIC_KEY), key.public_key().to_pem())?;
    Ok(key)
}

/// The project's signing key, made (and said so) when there is none.
pub fn signing_key(root: &Path) -> anyhow::Result<cosign::SigningKey> {
    let dir = root.join(KEYS_DIR);
    let private = dir.join(PRIVATE_KEY);
    if !private.exists() {
        eprintln!(
            "image: no signing key in {}: making a development key (cargo xtask keys)",
            dir.display()
        );
        return create(&dir);
    }
    let text = std::fs::read_to_string(&private)?;
    cosign::SigningKey::from_pem(&text).with_context(|| format!("{}", private.display()))
}

/// Writes `NAME.sig` beside each file of `SHA256SUMS` and beside `SHA256SUMS` itself, and
/// says how long it took.
pub fn sign_outputs(outputs: &Outputs, key: &cosign::SigningKey) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut bytes = 0;
    let listed = listed(outputs)?;
    for name in listed.keys().map(String::as_str).chain([SUMS]) {
        let path = outputs.dir.join(name);
        let data = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
        bytes += data.len();
        std::fs::write(outputs.dir.join(format!("{name}.sig")), key.sign(&data)?)?;
    }
    eprintln!(
        "image: signed {} files ({} MiB) with key {} in {:.2} s",
        listed.len() + 1,
        bytes >> 20,
        key.public_key().fingerprint(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The names and digests `SHA256SUMS` lists.
fn listed(outputs: &Outputs) -> anyhow::Result<BTreeMap<String, String>> {
    let path = outputs.dir.join(SUMS);
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    text.lines()
        .map(|line| {
            let (digest, name) = line
                .split_once("  ")
                .with_context(|| format!("{}: bad line {line:?}", path.display()))?;
            Ok((name.to_string(), digest.to_string()))
        })
        .collect()
}

/// `cargo xtask verify [--key FILE] [--node ADDR [--endpoint E] [--talosconfig F]]`.
pub fn run_verify(args: &[String]) -> anyhow::Result<()> {
    let root = workspace_root();
    let mut key_file = root.join(KEYS_DIR).join(PUBLIC_KEY);
    let mut node = None;
    let mut talosctl_args = Vec::new();
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--key" => key_file = PathBuf::from(value),
            "--node" => node = Some(value.clone()),
            "--endpoint" => talosctl_args.extend(["-e".to_string(), value.clone()]),
            "--talosconfig" => talosctl_args.extend(["--talosconfig".to_string(), value.clone()]),
            _ => bail!(
                "usage: cargo xtask verify [--key FILE] [--node ADDR [--endpoint E] [--talosconfig F]]"
            ),
        }
    }
    let key_text = std::fs::read_to_string(&key_file)
        .with_context(|| format!("reading the public key {}", key_file.display()))?;
    let key = cosign::PublicKey::from_pem(&key_text)
        .with_context(|| format!("{}", key_file.display()))?;
    let outputs = Outputs::new(&root);
    let sums = verify_outputs(&outputs, &key)?;
    if let Some(node) = node {
        verify_node(&root, &node, &talosctl_args, &sums)?;
    }
    Ok(())
}

/// Checks `SHA256SUMS.sig`, every listed file's digest and `.sig`, and the installer's own
/// signature; returns the signed digests.
fn verify_outputs(
    outputs: &Outputs,
    key: &cosign::PublicKey,
) -> anyhow::Result<BTreeMap<String, String>> {
    let check = |name: &str, data: &[u8]| -> anyhow::Result<()> {
        let sig_path = outputs.dir.join(format!("{name}.sig"));
        let signature = std::fs::read_to_string(&sig_path)
            .with_context(|| format!("{name} is not signed: reading {}", sig_path.display()))?;
        key.verify(name, data, &signature)?;
        Ok(())
    };
    check(SUMS, &std::fs::read(outputs.dir.join(SUMS))?)?;
    println!("{SUMS}: signature OK (key {})", key.fingerprint());
    let sums = listed(outputs)?;
    for (name, digest) in &sums {
        let data = std::fs::read(outputs.dir.join(name))?;
        let actual = sha256_hex(&data);
        if actual != *digest {
            bail!("{name}: sha256 {actual}, but {SUMS} says {digest}");
        }
        check(name, &data)?;
        println!("{name}: sha256 and signature OK");
    }
    let unpacked_dir = tempfile::tempdir()?;
    let unpacked = installer::unpack(
        &outputs.installer(),
        unpacked_dir.path(),
        installer::Limits::default(),
    )?;
    let verified = unpacked.signatures.iter().any(|signature| {
        key.verify("the installer", &signature.payload, &signature.signature)
            .is_ok()
            && cosign::payload_digest(&signature.payload).ok().as_ref() == Some(&unpacked.digest)
    });
    if !verified {
        bail!(
            "the installer {} ({}) carries no signature of its manifest by key {}",
            unpacked.name,
            unpacked.digest,
            key.fingerprint()
        );
    }
    println!(
        "installer {}: manifest {} signed (cosign simple signing)",
        unpacked.name, unpacked.digest
    );
    Ok(sums)
}

/// Compares the node's `BootArtifacts` with the signed digests.
fn verify_node(
    root: &Path,
    node: &str,
    talosctl_args: &[String],
    sums: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let talosctl = [
        root.join("target/release/talosctl"),
        root.join("target/debug/talosctl"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .context("no talosctl built: cargo build -p talosctl")?;
    let output = Command::new(talosctl)
        .args(talosctl_args)
        .args(["-n", node, "get", "bootartifacts", "-o", "json"])
        .output()?;
    if !output.status.success() {
        bail!(
            "talosctl get bootartifacts on {node}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let published = published_digests(&String::from_utf8_lossy(&output.stdout))?;
    let mut failures = Vec::new();
    for name in BOOT_ARTIFACTS {
        match (published.get(name), sums.get(name)) {
            (Some(running), Some(signed)) if running == signed => {
                println!("{node}: {name} {running} matches the signed {SUMS}");
            }
            (Some(running), Some(signed)) => failures.push(format!(
                "{name}: the node runs {running}, {SUMS} says {signed}"
            )),
            (None, _) => failures.push(format!("{name}: the node publishes no digest")),
            (_, None) => failures.push(format!("{name}: not in {SUMS}")),
        }
    }
    if !failures.is_empty() {
        bail!(
            "{node} does not run the signed build:\n  {}",
            failures.join("\n  ")
        );
    }
    Ok(())
}

/// `id → sha256` from `talosctl get -o json` (one JSON object per resource).
fn published_digests(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut digests = BTreeMap::new();
    for value in serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>() {
        let value = value?;
        if let (Some(id), Some(digest)) = (
            value["metadata"]["id"].as_str(),
            value["spec"]["sha256"].as_str(),
        ) {
            digests.insert(id.to_string(), digest.to_string());
        }
    }
    Ok(digests)
}
