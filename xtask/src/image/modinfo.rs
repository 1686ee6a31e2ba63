//! Kernel modules: the `.modinfo` section of each `.ko` (read from the ELF file, so the build
//! host needs no kmod), and the dependency closure of a module list in load order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// Every module of a kernel tree, by its name (`-` normalised to `_`).
#[derive(Debug)]
pub struct ModuleIndex {
    modules: BTreeMap<String, Module>,
}

#[derive(Debug, Clone)]
pub struct Module {
    pub name: String,
    pub path: PathBuf,
    pub depends: Vec<String>,
    /// 0 when every dependency loaded before; else one more than its deepest dependency.
    pub level: usize,
}

impl ModuleIndex {
    /// Indexes every `.ko` under `dir` (`/lib/modules/<release>/kernel`).
    pub fn scan(dir: &Path) -> anyhow::Result<Self> {
        let mut modules = BTreeMap::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in
                std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
            {
                let path = entry?.path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "ko") {
                    let stem = path
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or_default();
                    let name = normalise(stem);
                    modules.insert(
                        name.clone(),
                        Module {
                            name,
                            path,
                            depends: Vec::new(),
                            level: 0,
                        },
                    );
                }
            }
        }
        Ok(ModuleIndex { modules })
    }

    /// The modules `wanted` and everything they depend on, dependencies first; modules listed in
    /// `skip` (already loaded earlier) are left out.
    pub fn load_order(
        &mut self,
        wanted: &[String],
        skip: &BTreeSet<String>,
    ) -> anyhow::Result<Vec<Module>> {
        let mut order = Vec::new();
        let mut seen = skip.clone();
        for name in wanted {
            self.visit(&normalise(name), &mut seen, &mut Vec::new(), &mut order)?;
        }
        Ok(order)
    }

    fn visit(
        &mut self,
        name: &str,
        seen: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
        order: &mut Vec<Module>,
    ) -> anyhow::Result<()> {
        if seen.contains(name) {
            return Ok(());
        }
        if stack.iter().any(|n| n == name) {
            bail!("module dependency cycle: {} -> {name}", stack.join(" -> "));
        }
        let module = self
            .modules
            .get_mut(name)
            .with_context(|| format!("module {name} is not in the kernel package"))?;
        if module.depends.is_empty() {
            module.depends = read_depends(&module.path)?;
            module.depends.extend(
                SOFT_DEPENDENCIES
                    .iter()
                    .filter(|(m, _)| *m == name)
                    .map(|(_, provider)| (*provider).to_string()),
            );
        }
        let mut module = module.clone();
        stack.push(name.to_string());
        for dependency in &module.depends {
            self.visit(dependency, seen, stack, order)?;
        }
        stack.pop();
        module.level = order
            .iter()
            .filter(|m| module.depends.contains(&m.name))
            .map(|m| m.level + 1)
            .max()
            .unwrap_or(0);
        seen.insert(name.to_string());
        order.push(module);
        Ok(())
    }
}

/// The `load-order` file of `modules`: one line per level, names sorted within a line.
pub fn load_order_file(modules: &[Module]) -> String {
    let levels = modules.iter().map(|m| m.level + 1).max().unwrap_or(0);
    let mut text = String::new();
    for level in 0..levels {
        let mut names: Vec<String> = modules
            .iter()
            .filter(|m| m.level == level)
            .map(|m| format!("{}.ko", m.name))
            .collect();
        names.sort();
        text.push_str(&names.join(" "));
        text.push('\n');
    }
    text
}

/// Soft dependencies (`softdep=pre: …`, named by alias) finit_module needs resolved: the
/// module, and the module that provides what it asks for at load time.
const SOFT_DEPENDENCIES: &[(&str, &str)] = &[
    // libcrc32c asks the crypto API for "crc32c" in its init function.
    ("libcrc32c", "crc32c_generic"),
];

fn normalise(name: &str) -> String {
    name.replace('-', "_")
}

/// The `depends=` entry of a module's `.modinfo` section.
fn read_depends(path: &Path) -> anyhow::Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let section =
        modinfo_section(&bytes).with_context(|| format!("no .modinfo in {}", path.display()))?;
    Ok(section
        .split(|b| *b == 0)
        .filter_map(|entry| entry.strip_prefix(b"depends="))
        .flat_map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .map(normalise)
                .collect::<Vec<_>>()
        })
        .filter(|name| !name.is_empty())
        .collect())
}

/// The bytes of the `.modinfo` section of a little-endian ELF64 file.
fn modinfo_section(elf: &[u8]) -> Option<&[u8]> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?));
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let section_headers = usize::try_from(u64_at(0x28)?).ok()?;
    let entry_size = usize::from(u16_at(0x3a)?);
    let count = usize::from(u16_at(0x3c)?);
    let names_index = usize::from(u16_at(0x3e)?);
    let header = |index: usize| section_headers + index * entry_size;
    let section = |index: usize| -> Option<&[u8]> {
        let offset = usize::try_from(u64_at(header(index) + 0x18)?).ok()?;
        let size = usize::try_from(u64_at(header(index) + 0x20)?).ok()?;
        elf.get(offset..offset + size)
    };
    let names = section(names_index)?;
    (0..count).find_map(|index| {
        let name_at = usize::try_from(u32_at(header(index))?).ok()?;
        let name = names.get(name_at..)?.split(|b| *b == 0).next()?;
        (name == b".modinfo").then(|| section(index)).flatten()
    })
}
