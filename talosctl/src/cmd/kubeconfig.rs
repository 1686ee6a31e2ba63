//! `talosctl kubeconfig [local-path]`: fetches the admin kubeconfig from one control plane
//! (`Kubeconfig`, a gzip tar with one file `kubeconfig`) and merges it into the local
//! kubeconfig, or writes it as a new file, as upstream does:
//!
//! - no path: with `--merge` (the default) the user's kubeconfig (first entry of `KUBECONFIG`,
//!   else `~/.kube/config`); without it the current directory;
//! - a directory (such as `.`): the file `kubeconfig` in it;
//! - a file that does not exist yet is written (no merge); an existing one is merged into
//!   (conflicting names get `-1`, `-2`, ... unless `--force` replaces them), or with
//!   `--merge=false` only replaced with `--force`.
//!
//! Files are written atomically with mode 0600. Upstream asks on a terminal whether to rename
//! or overwrite conflicting entries; here renaming is always chosen unless `--force` is given.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use atomicfile::Overwrite;
use clap::{ArgAction, Args};
use kubernetes::{Kubeconfig, MergeOptions, extract_kubeconfig};

use crate::cli::GlobalArgs;
use crate::connection::{Session, block_on};
use crate::failures::Failures;

#[derive(Debug, Args)]
pub struct KubeconfigArgs {
    /// Where to write or merge the kubeconfig (a file, or a directory for `kubeconfig` in it)
    pub local_path: Option<PathBuf>,
    /// Force overwrite of kubeconfig if already present, force overwrite on kubeconfig merge
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Force context name for kubeconfig merge
    #[arg(long = "force-context-name")]
    pub force_context_name: Option<String>,
    /// Merge with existing kubeconfig
    #[arg(short = 'm', long, action = ArgAction::Set, num_args = 0..=1,
          default_value_t = true, default_missing_value = "true")]
    pub merge: bool,
}

pub fn run(args: KubeconfigArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let (path, merge) = target_path(&args)?;
    block_on(async {
        let session = Session::open(global).await?;
        session.require_one_node("kubeconfig")?;
        let mut failures = Failures::default();
        let mut archive = Vec::new();
        for target in session.targets() {
            let reply = target.machine().kubeconfig(target.request(())?).await;
            target
                .stream(reply, &mut failures, |_, data| {
                    archive.extend_from_slice(&data.bytes);
                    Ok(())
                })
                .await?;
        }
        if !archive.is_empty() {
            let kubeconfig = extract_kubeconfig(&archive)?;
            let messages = save(&kubeconfig, &path, merge, &args)?;
            for message in messages {
                println!("{message}");
            }
        }
        failures.finish()
    })
}

/// The user's kubeconfig: the first entry of `KUBECONFIG`, else `~/.kube/config`.
fn default_kubeconfig_path() -> anyhow::Result<PathBuf> {
    if let Some(first) = std::env::var_os("KUBECONFIG")
        .as_deref()
        .and_then(|list| std::env::split_paths(list).find(|p| !p.as_os_str().is_empty()))
    {
        return Ok(first);
    }
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(Path::new(&home).join(".kube").join("config"))
}

/// Where the kubeconfig goes and whether it is merged, decided before anything is fetched.
fn target_path(args: &KubeconfigArgs) -> anyhow::Result<(PathBuf, bool)> {
    let mut path = match &args.local_path {
        Some(path) => path.clone(),
        None if args.merge => default_kubeconfig_path()?,
        None => std::env::current_dir().context("error getting current working directory")?,
    };
    if path.is_dir() {
        path = path.join("kubeconfig");
    }
    let merge = match path.try_exists() {
        Ok(true) if !(args.force || args.merge) => anyhow::bail!(
            "kubeconfig file already exists, use --force to overwrite: {:?}",
            path.display().to_string()
        ),
        Ok(true) => args.merge,
        // Merging makes no sense if the file does not exist.
        Ok(false) => false,
        Err(error) => {
            return Err(error).with_context(|| format!("error checking path {}", path.display()));
        }
    };
    Ok((path, merge))
}

/// Writes `kubeconfig` to `path`, merging it into the file there when `merge` is set; returns
/// the rename messages of the merge.
fn save(
    kubeconfig: &[u8],
    path: &Path,
    merge: bool,
    args: &KubeconfigArgs,
) -> anyhow::Result<Vec<String>> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let (contents, messages) = if merge {
        let text = std::str::from_utf8(kubeconfig).context("the node's kubeconfig is not UTF-8")?;
        let new = Kubeconfig::from_yaml(text, "from the node")?;
        let existing_text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut existing = Kubeconfig::from_yaml(&existing_text, &path.display().to_string())?;
        let messages = existing.merge(
            new,
            &MergeOptions {
                force: args.force,
                force_context_name: args.force_context_name.clone(),
                activate_context: true,
            },
        );
        (existing.to_yaml()?.into_bytes(), messages)
    } else {
        (kubeconfig.to_vec(), Vec::new())
    };
    atomicfile::write(path, &contents, 0o600, Overwrite::Allow)?;
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn args(path: &Path, force: bool, merge: bool) -> KubeconfigArgs {
        KubeconfigArgs {
            local_path: Some(path.to_path_buf()),
            force,
            force_context_name: None,
            merge,
        }
    }

    const NEW: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: demo\n  cluster:\n    server: https://10.5.0.2:6443\nusers:\n- name: admin@demo\n  user:\n    client-certificate-data: Y2VydA==\ncontexts:\n- name: admin@demo\n  context:\n    cluster: demo\n    user: admin@demo\ncurrent-context: admin@demo\n";

    #[test]
    fn a_directory_gets_a_kubeconfig_file_written_without_merging() {
        let dir = tempfile::tempdir().unwrap();
        let (path, merge) = target_path(&args(dir.path(), false, true)).unwrap();
        assert_eq!(path, dir.path().join("kubeconfig"));
        assert!(!merge, "nothing to merge into");
        save(NEW.as_bytes(), &path, merge, &args(dir.path(), false, true)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), NEW);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn an_existing_file_is_merged_or_refused_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/config");
        let first = args(&path, false, true);
        let (target, merge) = target_path(&first).unwrap();
        save(NEW.as_bytes(), &target, merge, &first).unwrap();

        let changed = NEW.replace("https://10.5.0.2:6443", "https://10.5.0.3:6443");
        let (target, merge) = target_path(&first).unwrap();
        assert!(merge);
        let messages = save(changed.as_bytes(), &target, merge, &first).unwrap();
        assert_eq!(messages[0], "renamed cluster \"demo\" -> \"demo-1\"");
        let merged = Kubeconfig::from_yaml(&std::fs::read_to_string(&path).unwrap(), "x").unwrap();
        assert_eq!(merged.clusters.len(), 2);
        assert_eq!(merged.current_context, "admin@demo-1");

        let error = target_path(&args(&path, false, false)).unwrap_err();
        assert!(
            error.to_string().contains("use --force to overwrite"),
            "{error}"
        );
        let forced = args(&path, true, false);
        let (target, merge) = target_path(&forced).unwrap();
        assert!(!merge);
        save(NEW.as_bytes(), &target, merge, &forced).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), NEW);
    }
}
