//! The cgroup tree as read from the node, and its table with the tree drawn in the NAME
//! column as upstream draws it (`├──`, `└──`, `│`).

use std::collections::BTreeMap;

use super::schema::{Names, Schema};

/// One cgroup: the files read from it and its child cgroups by name.
#[derive(Debug, Default, PartialEq)]
pub struct Node {
    files: BTreeMap<String, String>,
    children: BTreeMap<String, Node>,
}

/// Width of one level of the drawing.
const INDENT: usize = 3;

impl Node {
    /// The cgroup at `relative` (`a/b`; `.` or empty is this one), created with its parents.
    pub fn entry(&mut self, relative: &str) -> &mut Node {
        relative
            .split('/')
            .filter(|part| !part.is_empty() && *part != ".")
            .fold(self, |node, part| {
                node.children.entry(part.to_string()).or_default()
            })
    }

    pub fn set_file(&mut self, name: &str, contents: String) {
        self.files.insert(name.to_string(), contents);
    }

    pub fn file(&self, name: &str) -> Option<&str> {
        self.files.get(name).map(String::as_str)
    }

    /// The table rows: the drawn name, then the schema's cells; the root is `.`.
    pub fn rows(&self, schema: &Schema, names: &Names) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        let mut first = vec![".".to_string()];
        first.extend(schema.row(self, None, names));
        rows.push(first);
        self.child_rows(schema, names, "", &mut rows);
        rows
    }

    fn child_rows(
        &self,
        schema: &Schema,
        names: &Names,
        prefix: &str,
        rows: &mut Vec<Vec<String>>,
    ) {
        let count = self.children.len();
        for (i, (name, child)) in self.children.iter().enumerate() {
            let last = i + 1 == count;
            let edge = if last { "└──" } else { "├──" };
            let mut row = vec![format!("{prefix}{edge}{name}")];
            row.extend(schema.row(child, Some(self), names));
            rows.push(row);
            let below = if last {
                " ".repeat(INDENT + 1)
            } else {
                format!("│{}", " ".repeat(INDENT))
            };
            child.child_rows(schema, names, &format!("{prefix}{below}"), rows);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::table;

    /// A small tree as a node would hold it: the root, `init`, `system/{apid,trustd}`.
    fn fixture() -> Node {
        let mut root = Node::default();
        for (path, current, user) in [
            (".", "1048576", "4000000"),
            ("init", "2048", "1000000"),
            ("system", "524288", "3000000"),
            ("system/apid", "15728640", "1500000"),
            ("system/trustd", "100", "750"),
        ] {
            let node = root.entry(path);
            node.set_file("memory.current", current.to_string());
            node.set_file("memory.max", "max\n".to_string());
            node.set_file(
                "cpu.stat",
                format!("usage_usec 1\nuser_usec {user}\nsystem_usec 0\n"),
            );
        }
        root.entry("system/apid")
            .set_file("cgroup.procs", "12\n13\n".to_string());
        root.entry("system/apid").set_file(
            "io.stat",
            "8:0 rbytes=1024 wbytes=2048 rios=1 wios=2\n".to_string(),
        );
        root
    }

    #[test]
    fn the_memory_table_draws_the_tree_and_shows_missing_files_as_unset() {
        let schema = Schema::preset("memory").unwrap();
        let tree = fixture();
        let rows = tree.rows(&schema, &Names::default());
        let mut header = vec!["NAME"];
        header.extend(schema.header());
        let text = table(&header, &rows);
        let expected = "\
NAME            MemCurrent   MemPeak    MemLow     Peak/Low   MemHigh    MemMin     Current/Min   MemMax
.                1.0 MiB        unset      unset    unset%       unset      unset    unset%            max
├──init          2.0 KiB        unset      unset    unset%       unset      unset    unset%            max
└──system        512 KiB        unset      unset    unset%       unset      unset    unset%            max
    ├──apid       15 MiB        unset      unset    unset%       unset      unset    unset%            max
    └──trustd      100 B        unset      unset    unset%       unset      unset    unset%            max
";
        assert_eq!(text, expected);
    }

    #[test]
    fn cpu_shares_are_of_the_parent_and_the_root_has_none() {
        let schema = Schema::preset("cpu").unwrap();
        let rows = fixture().rows(&schema, &Names::default());
        let user = |row: usize| (rows[row][4].clone(), rows[row][5].clone());
        assert_eq!(user(0), ("          4s".to_string(), "-".to_string()));
        assert_eq!(user(1), ("          1s".to_string(), " 25.00%".to_string()));
        assert_eq!(rows[3][0], "    ├──apid");
        assert_eq!(user(3), ("        1.5s".to_string(), " 50.00%".to_string()));
        assert_eq!(rows[4][4], "       750µs");
        assert_eq!(rows[0][3], "    []");
    }

    #[test]
    fn processes_and_devices_are_named() {
        let tree = fixture();
        let names = Names {
            processes: BTreeMap::from([("12".to_string(), "apid".to_string())]),
            devices: BTreeMap::from([("8:0".to_string(), "sda".to_string())]),
        };
        let process = Schema::preset("process").unwrap();
        let rows = tree.rows(&process, &names);
        assert_eq!(rows[0][6], "", "the root lists no processes");
        assert_eq!(rows[3][4], "      2");
        assert_eq!(rows[3][6], "[apid 13]");
        let io = Schema::preset("io").unwrap();
        let rows = tree.rows(&io, &names);
        assert_eq!(rows[3][1], "sda: 1.0 KiB/2.0 KiB ");
        assert_eq!(rows[3][2], "sda: 1/2 ");
    }

    #[test]
    fn a_deep_tree_keeps_the_links_of_open_levels() {
        let mut root = Node::default();
        for path in ["a/x/deep", "a/y", "b"] {
            root.entry(path);
        }
        let schema = Schema::from_yaml("columns:\n  - name: Max\n    value: memory.max\n").unwrap();
        let names: Vec<String> = root
            .rows(&schema, &Names::default())
            .into_iter()
            .map(|row| row[0].clone())
            .collect();
        assert_eq!(
            names,
            [
                ".",
                "├──a",
                "│   ├──x",
                "│   │   └──deep",
                "│   └──y",
                "└──b"
            ]
        );
    }
}
