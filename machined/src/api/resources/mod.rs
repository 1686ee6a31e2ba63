//! The COSI resource API (`cosi.resource.State`), read-only: Get, List and Watch of
//!
//! - the node's resource state ([`crate::controllers`]): the active machine config
//!   (`MachineConfigs.config.talos.dev`, namespace `config`; it holds secrets, so only `os:admin`
//!   may read or watch it, as upstream marks the type SENSITIVE), the machine type, the hostname
//!   spec, services and the machine status; the network status resources of namespace `network`
//!   (addresses, routes, links, hostname, resolvers, node addresses and the network status),
//!   which networkd keeps current where it runs
//!   ([`crate::controllers::network_status`]);
//! - `ResourceDefinitions.meta.cosi.dev`, describing all of these for `talosctl get`.
//!
//! The state's types include upstream's runtime, hardware, cluster, time, network spec and
//! secrets types ([`crate::controllers`] lists their sources); the secrets are sensitive like the
//! machine config.
//!
//! A watch follows upstream's options: the current contents first (`bootstrap_contents`, then a
//! BOOTSTRAPPED event for `api_version` 1), or the last `tail_events` events, then every change;
//! `aggregated` packs the events at hand into one reply. Other types answer NotFound; the write
//! verbs answer Unimplemented.

mod catalog;

use std::sync::Arc;

use proto::cosi::resource::state_server::State;
use proto::cosi::resource::{
    Event, EventType, GetRequest, GetResponse, ListRequest, ListResponse, Metadata, Resource, Spec,
    WatchRequest, WatchResponse,
};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::CallerRoles;
use crate::error::MachinedError;
use crate::machine::Machine;
use catalog::{Definition, Source};

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
        let request = request.into_inner();
        let resource = all(&self.machine, &roles, &request.namespace, &request.r#type)?
            .into_iter()
            .find(|r| r.metadata.as_ref().is_some_and(|m| m.id == request.id))
            .ok_or_else(|| {
                MachinedError::NotFound(format!(
                    "resource {}/{}/{} doesn't exist",
                    request.namespace, request.r#type, request.id
                ))
            })?;
        Ok(Response::new(GetResponse {
            resource: Some(resource),
        }))
    }

    async fn list(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<BoxStream<ListResponse>>, Status> {
        let roles = CallerRoles::of(&request);
        let request = request.into_inner();
        let resources = all(&self.machine, &roles, &request.namespace, &request.r#type)?;
        let replies = resources.into_iter().map(|resource| {
            Ok(ListResponse {
                resource: Some(resource),
            })
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<BoxStream<WatchResponse>>, Status> {
        let roles = CallerRoles::of(&request);
        let request = request.into_inner();
        let definition = readable(&roles, &request.r#type)?;
        if definition.source != Source::State {
            return Err(MachinedError::Unimplemented(format!(
                "watching {} is not supported",
                definition.resource_type
            ))
            .into());
        }
        let options = request.options.unwrap_or_default();
        let kind = resources::Kind::new(&request.namespace, definition.resource_type);
        let mut watch = self.machine.resources.watch(
            &kind,
            &resources::WatchOptions {
                id: request.id.clone(),
                bootstrap_contents: options.bootstrap_contents,
                tail_events: usize::try_from(options.tail_events).unwrap_or(0),
            },
        );
        let aggregated = options.aggregated;
        let bootstrapped_marker = request.api_version >= 1 && watch.bootstrapped;
        let (sender, receiver) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let initial: Vec<Event> = watch.initial.drain(..).map(|e| event(&e)).collect();
            let mut first = if aggregated {
                vec![initial]
            } else {
                initial.into_iter().map(|e| vec![e]).collect()
            };
            if bootstrapped_marker {
                first.push(vec![Event {
                    event_type: EventType::Bootstrapped as i32,
                    ..Event::default()
                }]);
            }
            for events in first.into_iter().filter(|events| !events.is_empty()) {
                if sender
                    .send(Ok(WatchResponse { event: events }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            loop {
                let next = tokio::select! {
                    next = watch.next() => next,
                    () = sender.closed() => return,
                };
                let Some(change) = next else {
                    let _ = sender
                        .send(Err(Status::resource_exhausted(
                            "the watch fell behind the changes: start it again",
                        )))
                        .await;
                    return;
                };
                let mut events = vec![event(&change)];
                while aggregated && let Some(more) = watch.try_next() {
                    events.push(event(&more));
                }
                if sender
                    .send(Ok(WatchResponse { event: events }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }
}

/// The definition of `resource_type`, if the caller may read it.
fn readable(
    roles: &CallerRoles,
    resource_type: &str,
) -> Result<&'static Definition, MachinedError> {
    let definition = catalog::find(resource_type).ok_or_else(|| {
        MachinedError::NotFound(format!("resource type {resource_type:?} is not supported"))
    })?;
    if definition.sensitive && !roles.is_admin() {
        return Err(MachinedError::PermissionDenied("not authorized".into()));
    }
    Ok(definition)
}

fn event(change: &resources::Event) -> Event {
    let event_type = match change.kind {
        resources::EventKind::Created => EventType::Created,
        resources::EventKind::Updated => EventType::Updated,
        resources::EventKind::Destroyed => EventType::Destroyed,
    };
    Event {
        resource: Some(wire(&change.resource)),
        event_type: event_type as i32,
        old: change.old.as_deref().map(wire),
        ..Event::default()
    }
}

/// A state resource as it crosses the wire.
fn wire(resource: &resources::Resource) -> Resource {
    let metadata = &resource.metadata;
    let timestamp = |time: std::time::SystemTime| prost_types::Timestamp::from(time);
    Resource {
        metadata: Some(Metadata {
            namespace: metadata.kind.namespace.clone(),
            r#type: metadata.kind.resource_type.clone(),
            id: metadata.id.clone(),
            version: metadata.version.to_string(),
            owner: metadata.owner.clone(),
            phase: metadata.phase.as_str().into(),
            created: Some(timestamp(metadata.created)),
            updated: Some(timestamp(metadata.updated)),
            finalizers: metadata.finalizers.clone(),
            labels: metadata.labels.clone().into_iter().collect(),
            annotations: metadata.annotations.clone().into_iter().collect(),
        }),
        spec: Some(Spec {
            proto_spec: resource.proto_spec.clone(),
            yaml_spec: resource.yaml_spec.clone(),
        }),
    }
}

/// Every resource of `resource_type` in `namespace`.
fn all(
    machine: &Machine,
    roles: &CallerRoles,
    namespace: &str,
    resource_type: &str,
) -> Result<Vec<Resource>, MachinedError> {
    let definition = readable(roles, resource_type)?;
    if namespace != definition.namespace {
        return Ok(Vec::new());
    }
    let items: Vec<(String, String, Vec<u8>)> = match definition.source {
        Source::State => {
            let kind = resources::Kind::new(namespace, resource_type);
            return Ok(machine
                .resources
                .list(&kind)
                .iter()
                .map(|resource| wire(resource))
                .collect());
        }
        Source::Catalog => catalog::DEFINITIONS
            .iter()
            .map(|d: &Definition| {
                let bytes = prost::Message::encode_to_vec(&d.spec());
                (d.resource_type.to_ascii_lowercase(), d.spec_yaml(), bytes)
            })
            .collect(),
    };
    Ok(items
        .into_iter()
        .map(|(id, yaml_spec, proto_spec)| Resource {
            metadata: Some(Metadata {
                namespace: definition.namespace.into(),
                r#type: definition.resource_type.into(),
                id,
                version: "1".into(),
                phase: "running".into(),
                ..Default::default()
            }),
            spec: Some(Spec {
                proto_spec,
                yaml_spec,
            }),
        })
        .collect())
}
