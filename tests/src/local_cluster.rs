//! A cluster made by `talosctl cluster create …` with a state folder and talosconfig of its own,
//! destroyed (`talosctl cluster destroy`) when dropped, even after a failed test.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::binary;

#[derive(Debug)]
pub struct LocalCluster {
    pub name: String,
    home: tempfile::TempDir,
}

impl LocalCluster {
    /// A cluster named `name` (a leftover of an earlier, killed run is destroyed first).
    pub fn new(name: &str) -> LocalCluster {
        let cluster = LocalCluster {
            name: name.to_string(),
            home: tempfile::tempdir().expect("temporary folder"),
        };
        let _ = cluster.destroy();
        cluster
    }

    /// `talosctl cluster --name NAME --state STATE ARGS…`.
    pub fn cluster(&self, args: &[&str]) -> Output {
        Command::new(binary("talosctl"))
            .arg("--talosconfig")
            .arg(self.talosconfig())
            .args(["cluster", "--name", &self.name, "--state"])
            .arg(self.state_root())
            .args(args)
            .output()
            .expect("running talosctl")
    }

    /// talosctl for a node command, with the cluster's talosconfig.
    pub fn talosctl(&self, args: &[&str]) -> Output {
        Command::new(binary("talosctl"))
            .arg("--talosconfig")
            .arg(self.talosconfig())
            .args(args)
            .output()
            .expect("running talosctl")
    }

    pub fn talosconfig(&self) -> PathBuf {
        self.home.path().join("config")
    }

    /// Where `talosctl cluster` keeps the cluster's state (`<this>/<name>`).
    pub fn state_root(&self) -> PathBuf {
        self.home.path().join("clusters")
    }

    pub fn destroy(&self) -> Output {
        self.cluster(&["destroy"])
    }

    /// Server-side `talosctl health` run on the first control plane for these nodes.
    pub fn health(&self, control_planes: &[String], workers: &[String]) -> Output {
        let mut args = vec![
            "health".to_string(),
            "-n".into(),
            control_planes[0].clone(),
            "--control-plane-nodes".into(),
            control_planes.join(","),
            "--wait-timeout".into(),
            "2m".into(),
        ];
        if !workers.is_empty() {
            args.extend(["--worker-nodes".into(), workers.join(",")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.talosctl(&args)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = self.destroy();
    }
}
