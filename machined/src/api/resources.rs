//! A first piece of the COSI resource API (`cosi.resource.State`): Get of the active machine
//! config, `MachineConfigs.config.talos.dev/v1alpha1` in namespace `config`, which
//! `talosctl edit|patch machineconfig` read before applying. The config holds secrets: only
//! `os:admin` may read it (upstream marks the type SENSITIVE). Other types answer NotFound;
//! List, Watch and the write verbs answer Unimplemented.

use std::sync::Arc;

use proto::cosi::resource::state_server::State;
use proto::cosi::resource::{GetRequest, GetResponse, Metadata, Resource, Spec};
use tonic::{Request, Response, Status};

use super::CallerRoles;
use crate::error::MachinedError;
use crate::machine::Machine;

/// The resource type of machine configs.
pub const MACHINE_CONFIG_TYPE: &str = "MachineConfigs.config.talos.dev";
/// The namespace of machine configs.
pub const CONFIG_NAMESPACE: &str = "config";
/// The id of the active machine config.
pub const ACTIVE_CONFIG_ID: &str = "v1alpha1";

/// `cosi.resource.State` served from a [`Machine`].
#[derive(Clone, Debug)]
pub struct ResourceApi {
    machine: Arc<Machine>,
}

impl ResourceApi {
    pub fn new(machine: Arc<Machine>) -> Self {
        ResourceApi { machine }
    }
}

#[tonic::async_trait]
impl State for ResourceApi {
    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let roles = CallerRoles::of(&request);
        get(&self.machine, &roles, &request.into_inner())
            .map(Response::new)
            .map_err(Status::from)
    }
}

fn get(
    machine: &Machine,
    roles: &CallerRoles,
    request: &GetRequest,
) -> Result<GetResponse, MachinedError> {
    if request.r#type != MACHINE_CONFIG_TYPE {
        return Err(MachinedError::NotFound(format!(
            "resource type {:?} is not supported",
            request.r#type
        )));
    }
    if !roles.is_admin() {
        return Err(MachinedError::PermissionDenied("not authorized".into()));
    }
    let config = machine
        .config
        .current()
        .filter(|_| request.namespace == CONFIG_NAMESPACE && request.id == ACTIVE_CONFIG_ID)
        .ok_or_else(|| {
            MachinedError::NotFound(format!(
                "resource {}/{}/{} doesn't exist",
                request.namespace, request.r#type, request.id
            ))
        })?;
    let yaml = config.to_yaml()?;
    Ok(GetResponse {
        resource: Some(Resource {
            metadata: Some(Metadata {
                namespace: CONFIG_NAMESPACE.into(),
                r#type: MACHINE_CONFIG_TYPE.into(),
                id: ACTIVE_CONFIG_ID.into(),
                version: "1".into(),
                phase: "running".into(),
                ..Default::default()
            }),
            spec: Some(Spec {
                proto_spec: yaml.clone().into_bytes(),
                yaml_spec: yaml,
            }),
        }),
    })
}
