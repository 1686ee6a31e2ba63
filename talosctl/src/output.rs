//! Writing results: files written all-or-nothing, and aligned tables.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use atomicfile::Overwrite;

/// A set of files to write together: nothing is written unless every target may be written.
#[derive(Debug, Default)]
pub struct FileSet {
    files: Vec<(PathBuf, Vec<u8>, u32)>,
}

impl FileSet {
    /// Adds a file with its permission bits.
    pub fn add(&mut self, path: PathBuf, contents: impl Into<Vec<u8>>, mode: u32) {
        self.files.push((path, contents.into(), mode));
    }

    /// The files' paths, in the order added.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(path, _, _)| path.as_path())
    }

    /// Checks every target first (refusing existing ones without `force`), then writes each
    /// atomically, printing `Created <path>` as upstream does.
    pub fn write(self, force: bool) -> anyhow::Result<()> {
        if !force {
            for (path, _, _) in &self.files {
                if path.symlink_metadata().is_ok() {
                    anyhow::bail!(
                        "{} already exists, use --force to overwrite",
                        path.display()
                    );
                }
            }
        }
        let overwrite = if force {
            Overwrite::Allow
        } else {
            Overwrite::Refuse
        };
        for (path, contents, mode) in self.files {
            create_parent(&path)?;
            atomicfile::write(&path, &contents, mode, overwrite)?;
            println!("Created {}", path.display());
        }
        Ok(())
    }
}

fn create_parent(path: &Path) -> anyhow::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir)
            .with_context(|| format!("creating directory {}", dir.display())),
        None => Ok(()),
    }
}

/// Formats rows as columns separated by at least three spaces, like Go's tabwriter in talosctl
/// (widths count characters, so `└─` lines up).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let width = |text: &str| text.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(width(cell));
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - width(cell) + 3));
            }
        }
        out.push('\n');
    }
    out
}
