//! `talosctl copy SRC LOCALDIR` (alias `cp`): a file or directory of the node, received as a
//! gzip-compressed tar stream and extracted under LOCALDIR (`-` writes the tar.gz to stdout).

use std::io::{Read, Write as _};
use std::path::{Component, Path};

use anyhow::Context as _;
use clap::Args;
use flate2::read::GzDecoder;
use proto::machine::CopyRequest;

use crate::cli::GlobalArgs;
use crate::connection::{Session, block_on};
use crate::failures::Failures;

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Absolute path on the node
    pub source: String,
    /// Local directory to extract into, or `-` for the raw tar.gz on stdout
    pub local: String,
}

pub fn run(args: CopyArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    block_on(async {
        let session = Session::open(global).await?;
        session.require_one_node("copy")?;
        let mut failures = Failures::default();
        let mut archive = Vec::new();
        let mut stdout = std::io::stdout().lock();
        let to_stdout = args.local == "-";
        for target in session.targets() {
            let request = CopyRequest {
                root_path: args.source.clone(),
            };
            let reply = target.machine().copy(target.request(request)?).await;
            target
                .stream(reply, &mut failures, |_, data| {
                    if to_stdout {
                        stdout.write_all(&data.bytes)?;
                    } else {
                        archive.extend_from_slice(&data.bytes);
                    }
                    Ok(())
                })
                .await?;
        }
        if to_stdout {
            stdout.flush()?;
        } else if !archive.is_empty() {
            extract(archive.as_slice(), Path::new(&args.local))?;
        }
        failures.finish()
    })
}

/// Extracts a gzip tar into `dir` (created if missing), refusing any entry that would land
/// outside it: absolute paths, `..`, or a path through a symlink pointing out.
fn extract(gzip_tar: impl Read, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut archive = tar::Archive::new(GzDecoder::new(gzip_tar));
    let entries = archive.entries().context("reading the tar stream")?;
    for entry in entries {
        let mut entry = entry.context("reading the tar stream")?;
        let path = entry
            .path()
            .context("reading a tar entry name")?
            .into_owned();
        let escapes = path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
        let outside = || {
            anyhow::anyhow!(
                "refusing to extract {}: it would be written outside {}",
                path.display(),
                dir.display()
            )
        };
        if escapes {
            return Err(outside());
        }
        let unpacked = entry
            .unpack_in(dir)
            .with_context(|| format!("extracting {}", path.display()))?;
        if !unpacked {
            return Err(outside());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    fn gzip_tar(build: impl FnOnce(&mut tar::Builder<GzEncoder<Vec<u8>>>)) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        build(&mut builder);
        builder.into_inner().expect("tar").finish().expect("gzip")
    }

    fn file(builder: &mut tar::Builder<GzEncoder<Vec<u8>>>, name: &str, body: &[u8]) {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        // `set_path` refuses `..`; write the raw name to build hostile archives.
        let bytes = header.as_old_mut().name.as_mut_slice();
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        builder.append(&header, body).expect("append");
    }

    #[test]
    fn extracts_files_and_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = gzip_tar(|b| {
            file(b, "log/", b"");
            file(b, "log/machined.log", b"booted\n");
        });
        extract(archive.as_slice(), &dir.path().join("out")).expect("extract");
        let text = std::fs::read_to_string(dir.path().join("out/log/machined.log")).expect("file");
        assert_eq!(text, "booted\n");
    }

    #[test]
    fn refuses_entries_escaping_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out");
        let archive = gzip_tar(|b| file(b, "../escaped", b"x"));
        let error = extract(archive.as_slice(), &target).expect_err("escape");
        assert!(
            error.to_string().contains("refusing to extract ../escaped"),
            "{error}"
        );
        assert!(!dir.path().join("escaped").exists());
    }

    #[test]
    fn refuses_writing_through_a_symlink_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).expect("outside dir");
        let archive = gzip_tar(|b| {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            header.set_mode(0o777);
            b.append_link(&mut header, "link", &outside)
                .expect("symlink");
            file(b, "link/file", b"x");
        });
        let error = extract(archive.as_slice(), &target).expect_err("through symlink");
        assert!(error.to_string().contains("link/file"), "{error:#}");
        assert!(!outside.join("file").exists());
    }
}
