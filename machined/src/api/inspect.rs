//! `inspect.InspectService`: the controller graph, for `talosctl inspect dependencies`.

use std::sync::Arc;

use proto::inspect::inspect_service_server::InspectService;
use proto::inspect::{
    ControllerDependencyEdge, ControllerRuntimeDependenciesResponse, ControllerRuntimeDependency,
    DependencyEdgeType,
};
use tonic::{Request, Response, Status};

use crate::machine::Machine;

/// Answers from the graph machined built its controllers with.
#[derive(Clone, Debug)]
pub struct InspectApi {
    machine: Arc<Machine>,
}

impl InspectApi {
    pub fn new(machine: Arc<Machine>) -> Self {
        InspectApi { machine }
    }
}

#[tonic::async_trait]
impl InspectService for InspectApi {
    async fn controller_runtime_dependencies(
        &self,
        _: Request<()>,
    ) -> Result<Response<ControllerRuntimeDependenciesResponse>, Status> {
        let mut edges = Vec::new();
        for controller in &self.machine.controllers {
            let edge =
                |kind: &resources::Kind, edge_type: DependencyEdgeType| ControllerDependencyEdge {
                    controller_name: controller.name.to_string(),
                    edge_type: edge_type as i32,
                    resource_namespace: kind.namespace.clone(),
                    resource_type: kind.resource_type.clone(),
                    resource_id: String::new(),
                };
            edges.extend(
                controller
                    .inputs
                    .iter()
                    .map(|kind| edge(kind, DependencyEdgeType::InputStrong)),
            );
            edges.extend(
                controller
                    .outputs
                    .iter()
                    .map(|kind| edge(kind, DependencyEdgeType::OutputExclusive)),
            );
        }
        Ok(Response::new(ControllerRuntimeDependenciesResponse {
            messages: vec![ControllerRuntimeDependency {
                metadata: None,
                edges,
            }],
        }))
    }
}
