//! `talosctl inspect dependencies`: the node's controllers and the resources they read and
//! write, as a Graphviz graph (`talosctl inspect dependencies | dot -Tpng > deps.png`).
//! Controllers are boxes, resource kinds are notes; an arrow goes from an input to its
//! controller and from a controller to its output.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use clap::{Args, Subcommand};
use proto::inspect::{ControllerDependencyEdge, DependencyEdgeType};

use crate::cli::GlobalArgs;
use crate::connection::{Session, block_on};
use crate::failures::Failures;

#[derive(Debug, Subcommand)]
pub enum InspectCommand {
    /// Inspect controller-resource dependencies as a graphviz graph
    Dependencies(DependenciesArgs),
}

#[derive(Debug, Args)]
pub struct DependenciesArgs {
    /// Draw resource kinds with their namespaces
    #[arg(long = "with-resources")]
    pub with_resources: bool,
}

pub fn run(command: InspectCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let InspectCommand::Dependencies(args) = command;
    block_on(async {
        let session = Session::open(global).await?;
        session.require_one_node("inspect dependencies")?;
        let mut failures = Failures::default();
        for target in session.targets() {
            match target
                .inspect()
                .controller_runtime_dependencies(target.request(())?)
                .await
            {
                Ok(reply) => {
                    let edges: Vec<ControllerDependencyEdge> = reply
                        .into_inner()
                        .messages
                        .into_iter()
                        .flat_map(|m| m.edges)
                        .collect();
                    print!("{}", dot(&edges, args.with_resources));
                }
                Err(status) => failures.report(format!(
                    "error from node {}: {}",
                    target.label(),
                    apiclient::ApiClientError::from(status)
                )),
            }
        }
        failures.finish()
    })
}

/// The graph in Graphviz's DOT language.
pub(crate) fn dot(edges: &[ControllerDependencyEdge], with_namespaces: bool) -> String {
    let resource = |edge: &ControllerDependencyEdge| {
        if with_namespaces {
            format!("{}/{}", edge.resource_namespace, edge.resource_type)
        } else {
            edge.resource_type.clone()
        }
    };
    let controllers: BTreeSet<&str> = edges.iter().map(|e| e.controller_name.as_str()).collect();
    let resources: BTreeSet<String> = edges.iter().map(resource).collect();
    let mut out = String::from("digraph {\n");
    for controller in &controllers {
        let _ = writeln!(out, "  {controller:?} [shape=box];");
    }
    for kind in &resources {
        let _ = writeln!(out, "  {kind:?} [shape=note];");
    }
    for edge in edges {
        let kind = resource(edge);
        let controller = &edge.controller_name;
        let _ = match edge.edge_type() {
            DependencyEdgeType::OutputExclusive | DependencyEdgeType::OutputShared => {
                writeln!(out, "  {controller:?} -> {kind:?};")
            }
            DependencyEdgeType::InputWeak => {
                writeln!(out, "  {kind:?} -> {controller:?} [style=dashed];")
            }
            DependencyEdgeType::InputStrong | DependencyEdgeType::InputDestroyReady => {
                writeln!(out, "  {kind:?} -> {controller:?};")
            }
        };
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(
        controller: &str,
        edge_type: DependencyEdgeType,
        kind: &str,
    ) -> ControllerDependencyEdge {
        ControllerDependencyEdge {
            controller_name: controller.into(),
            edge_type: edge_type as i32,
            resource_namespace: "config".into(),
            resource_type: kind.into(),
            resource_id: String::new(),
        }
    }

    #[test]
    fn inputs_point_at_controllers_and_controllers_at_outputs() {
        let graph = dot(
            &[
                edge("A", DependencyEdgeType::InputStrong, "In.t"),
                edge("A", DependencyEdgeType::OutputExclusive, "Out.t"),
            ],
            false,
        );
        assert_eq!(
            graph,
            "digraph {\n  \"A\" [shape=box];\n  \"In.t\" [shape=note];\n  \"Out.t\" [shape=note];\n  \"In.t\" -> \"A\";\n  \"A\" -> \"Out.t\";\n}\n"
        );
    }
}
