//! `talosctl cgroups`: against a dev node the tree is the host's `/sys/fs/cgroup` (a dev node's
//! services have no cgroups of their own), drawn with every preset's header; values come from
//! the node's files and missing ones show as `unset`. Loopback block 127.56.0.0/24.

use std::path::Path;

use tests::{Cluster, failure, success};

const PRESETS: [(&str, &str); 7] = [
    ("cpu", "CpuWeight"),
    ("cpuset", "CpuSet(Eff)"),
    ("io", "Bytes Read/Written"),
    ("memory", "MemCurrent"),
    ("process", "PidsCurrent"),
    ("psi", "MemPsiSome10"),
    ("swap", "ZswapWriteback"),
];

/// The drawn names of the tree's rows (the NAME column, up to the first run of 3 spaces).
fn names(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .map(|row| {
            row.split("   ")
                .next()
                .unwrap_or_default()
                .trim_end()
                .to_string()
        })
        .collect()
}

/// The first word of `row` under `column` of `header` (the table pads by characters).
fn cell(header: &str, row: &str, column: &str) -> String {
    let start = header
        .find(column)
        .map(|at| header[..at].chars().count())
        .unwrap_or_else(|| panic!("no {column} in {header}"));
    let rest: String = row.chars().skip(start).collect();
    rest.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The cgroups directly under `/sys/fs/cgroup` on this host, which the dev node shares.
fn top_level_cgroups() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/fs/cgroup")
        .expect("/sys/fs/cgroup")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_preset_prints_its_header_and_the_nodes_cgroup_tree() {
    let cluster = Cluster::start(56, 1);
    let node = cluster.nodes[0].address.to_string();
    for (preset, column) in PRESETS {
        let table = success(cluster.talosctl(&["-n", &node, "cgroups", "--preset", preset]));
        let header = table.lines().next().unwrap_or_default();
        assert!(header.starts_with("NAME "), "{preset}: {table}");
        assert!(header.contains(column), "{preset}: {table}");
        let names = names(&table);
        assert_eq!(names.first().map(String::as_str), Some("."), "{table}");
        // Every top-level cgroup is drawn as a child of the root, in name order.
        let children: Vec<String> = names
            .iter()
            .filter_map(|n| n.strip_prefix("├──").or_else(|| n.strip_prefix("└──")))
            .map(str::to_string)
            .collect();
        assert_eq!(children, top_level_cgroups(), "{preset}: {table}");
    }

    // A value the host has is shown, one it lacks is `unset`.
    let table = success(cluster.talosctl(&["-n", &node, "cgroups", "--preset", "memory"]));
    let mut lines = table.lines();
    let (header, root) = (
        lines.next().unwrap_or_default(),
        lines.next().unwrap_or_default(),
    );
    let has_memory_current = Path::new("/sys/fs/cgroup/memory.current").exists();
    let current = cell(header, root, "MemCurrent");
    assert_eq!(current != "unset", has_memory_current, "{table}");
    let table = success(cluster.talosctl(&["-n", &node, "cgroups", "--preset", "cpu"]));
    let header = table.lines().next().unwrap_or_default();
    for row in table.lines().skip(1) {
        let name = row.split_whitespace().next().unwrap_or_default();
        // The root and its children (drawn at the row's start; deeper rows are indented):
        // their files are at a known place on this host.
        let top_level = row.starts_with("├──") || row.starts_with("└──");
        let path = match name
            .strip_prefix("├──")
            .or_else(|| name.strip_prefix("└──"))
            .filter(|_| top_level)
        {
            Some(child) => Path::new("/sys/fs/cgroup").join(child),
            None if name == "." => Path::new("/sys/fs/cgroup").to_path_buf(),
            None => continue,
        };
        let has_user = std::fs::read_to_string(path.join("cpu.stat"))
            .is_ok_and(|stat| stat.lines().any(|l| l.starts_with("user_usec ")));
        let user = cell(header, row, "CpuUser");
        assert_eq!(user != "unset", has_user, "{row}\n{table}");
    }

    // A schema file in the same column terms, and bad input.
    let schema = cluster.dir.path().join("schema.yaml");
    std::fs::write(
        &schema,
        "columns:\n  - name: Procs\n    value: cgroup.procs | count\n    width: 5\n",
    )
    .unwrap();
    let table = success(cluster.talosctl(&[
        "-n",
        &node,
        "cgroups",
        "--schema-file",
        &schema.to_string_lossy(),
    ]));
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.lines().next().unwrap_or_default().ends_with("Procs"));
    let error = failure(cluster.talosctl(&["-n", &node, "cgroups", "--preset", "disk"]));
    assert!(error.contains("disk"), "{error}");
    let error = failure(cluster.talosctl(&["-n", &node, "cgroups"]));
    assert!(error.contains("preset"), "{error}");
}
