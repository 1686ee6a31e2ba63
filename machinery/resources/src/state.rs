//! The in-memory state: resources by kind and id, with Get, List, Watch and owned writes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use tokio::sync::broadcast;

use crate::{Kind, Metadata, Phase, Resource, Spec, StateError};

/// Live events a watcher may fall behind by before it is told it lagged.
const EVENT_BUFFER: usize = 1024;
/// Past events of a kind kept for `tail_events`.
const TAIL_EVENTS: usize = 128;

/// What changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Updated,
    Destroyed,
}

/// One change of one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// The resource after the change (before it, for a destroy).
    pub resource: Arc<Resource>,
    /// The resource before an update.
    pub old: Option<Arc<Resource>>,
}

/// How a watch starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchOptions {
    /// Only this resource (else the whole kind).
    pub id: Option<String>,
    /// Start with a Created event for every current resource (a watch of one resource always
    /// starts with it, when it exists).
    pub bootstrap_contents: bool,
    /// Start with up to this many past events of the kind instead.
    pub tail_events: usize,
}

/// A watch: the events to deliver first, then every change as it happens.
#[derive(Debug)]
pub struct Watch {
    /// Events to deliver before the live ones.
    pub initial: Vec<Arc<Event>>,
    /// Whether the initial events are the kind's whole contents (then a bootstrapped marker is
    /// due after them).
    pub bootstrapped: bool,
    id: Option<String>,
    live: broadcast::Receiver<Arc<Event>>,
}

impl Watch {
    /// The next live change; `None` when the watcher fell too far behind (it must start over)
    /// or the state is gone.
    pub async fn next(&mut self) -> Option<Arc<Event>> {
        loop {
            match self.live.recv().await {
                Ok(event) if self.wants(&event) => return Some(event),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// A live change already waiting, if any (to batch events into one reply).
    pub fn try_next(&mut self) -> Option<Arc<Event>> {
        loop {
            match self.live.try_recv() {
                Ok(event) if self.wants(&event) => return Some(event),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    fn wants(&self, event: &Event) -> bool {
        self.id
            .as_ref()
            .is_none_or(|id| *id == event.resource.metadata.id)
    }
}

#[derive(Debug)]
struct KindState {
    items: BTreeMap<String, Arc<Resource>>,
    events: broadcast::Sender<Arc<Event>>,
    tail: VecDeque<Arc<Event>>,
}

impl KindState {
    fn new() -> Self {
        KindState {
            items: BTreeMap::new(),
            events: broadcast::channel(EVENT_BUFFER).0,
            tail: VecDeque::new(),
        }
    }

    fn publish(&mut self, event: Event) {
        let event = Arc::new(event);
        if self.tail.len() == TAIL_EVENTS {
            self.tail.pop_front();
        }
        self.tail.push_back(Arc::clone(&event));
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }
}

/// Every resource of the node, by kind.
#[derive(Debug, Default)]
pub struct State {
    kinds: RwLock<HashMap<Kind, KindState>>,
}

impl State {
    pub fn new() -> Self {
        State::default()
    }

    /// The resource `id` of `kind`.
    pub fn get(&self, kind: &Kind, id: &str) -> Option<Arc<Resource>> {
        let kinds = self.kinds.read().unwrap_or_else(PoisonError::into_inner);
        kinds.get(kind)?.items.get(id).cloned()
    }

    /// Every resource of `kind`, by id.
    pub fn list(&self, kind: &Kind) -> Vec<Arc<Resource>> {
        let kinds = self.kinds.read().unwrap_or_else(PoisonError::into_inner);
        kinds
            .get(kind)
            .map(|k| k.items.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every kind that has (or had) resources.
    pub fn kinds(&self) -> Vec<Kind> {
        let kinds = self.kinds.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<Kind> = kinds.keys().cloned().collect();
        all.sort();
        all
    }

    /// Watches `kind` (or one resource of it): the initial events and the live ones come from
    /// one moment, so nothing is missed or seen twice.
    pub fn watch(&self, kind: &Kind, options: &WatchOptions) -> Watch {
        let mut kinds = self.kinds.write().unwrap_or_else(PoisonError::into_inner);
        let state = kinds.entry(kind.clone()).or_insert_with(KindState::new);
        let live = state.events.subscribe();
        let wanted = |resource: &Resource| {
            options
                .id
                .as_ref()
                .is_none_or(|id| *id == resource.metadata.id)
        };
        let (initial, bootstrapped) = if options.bootstrap_contents || options.id.is_some() {
            let initial = state
                .items
                .values()
                .filter(|r| wanted(r))
                .map(|r| {
                    Arc::new(Event {
                        kind: EventKind::Created,
                        resource: Arc::clone(r),
                        old: None,
                    })
                })
                .collect();
            (initial, true)
        } else {
            let skip = state.tail.len().saturating_sub(options.tail_events);
            let initial = state
                .tail
                .iter()
                .skip(skip)
                .filter(|e| wanted(&e.resource))
                .cloned()
                .collect();
            (initial, false)
        };
        Watch {
            initial,
            bootstrapped,
            id: options.id.clone(),
            live,
        }
    }

    /// Creates or updates `id` of `kind` as `owner`, with this spec and these labels. Writing
    /// what is already there changes nothing (no new version, no event). Returns whether the
    /// resource changed.
    pub fn write(
        &self,
        owner: &str,
        kind: &Kind,
        id: &str,
        yaml_spec: String,
        proto_spec: Vec<u8>,
        labels: BTreeMap<String, String>,
    ) -> Result<bool, StateError> {
        let mut kinds = self.kinds.write().unwrap_or_else(PoisonError::into_inner);
        let state = kinds.entry(kind.clone()).or_insert_with(KindState::new);
        let now = SystemTime::now();
        let old = state.items.get(id).cloned();
        let resource = match &old {
            Some(old) => {
                check_owner(old, owner)?;
                if old.yaml_spec == yaml_spec
                    && old.proto_spec == proto_spec
                    && old.metadata.labels == labels
                {
                    return Ok(false);
                }
                let mut metadata = old.metadata.clone();
                metadata.version += 1;
                metadata.updated = now;
                metadata.labels = labels;
                Resource {
                    metadata,
                    yaml_spec,
                    proto_spec,
                }
            }
            None => Resource {
                metadata: Metadata {
                    kind: kind.clone(),
                    id: id.to_string(),
                    version: 1,
                    owner: owner.to_string(),
                    phase: Phase::Running,
                    created: now,
                    updated: now,
                    labels,
                    annotations: BTreeMap::new(),
                    finalizers: Vec::new(),
                },
                yaml_spec,
                proto_spec,
            },
        };
        let resource = Arc::new(resource);
        state.items.insert(id.to_string(), Arc::clone(&resource));
        state.publish(Event {
            kind: if old.is_some() {
                EventKind::Updated
            } else {
                EventKind::Created
            },
            resource,
            old,
        });
        Ok(true)
    }

    /// Writes the typed `spec` as resource `id` of its kind, as `owner` (see [`State::write`]).
    pub fn write_spec<S: Spec>(&self, owner: &str, id: &str, spec: &S) -> Result<bool, StateError> {
        self.write(
            owner,
            &Kind::of::<S>(),
            id,
            spec.yaml_spec()?,
            spec.proto_spec(),
            BTreeMap::new(),
        )
    }

    /// Destroys `id` of `kind` as `owner`; returns whether it existed.
    pub fn destroy(&self, owner: &str, kind: &Kind, id: &str) -> Result<bool, StateError> {
        let mut kinds = self.kinds.write().unwrap_or_else(PoisonError::into_inner);
        let Some(state) = kinds.get_mut(kind) else {
            return Ok(false);
        };
        let Some(existing) = state.items.get(id) else {
            return Ok(false);
        };
        check_owner(existing, owner)?;
        if let Some(resource) = state.items.remove(id) {
            state.publish(Event {
                kind: EventKind::Destroyed,
                resource,
                old: None,
            });
        }
        Ok(true)
    }

    /// Notified of every change of `kind` (for controllers).
    pub(crate) fn subscribe(&self, kind: &Kind) -> broadcast::Receiver<Arc<Event>> {
        let mut kinds = self.kinds.write().unwrap_or_else(PoisonError::into_inner);
        kinds
            .entry(kind.clone())
            .or_insert_with(KindState::new)
            .events
            .subscribe()
    }
}

fn check_owner(resource: &Resource, writer: &str) -> Result<(), StateError> {
    let metadata = &resource.metadata;
    if metadata.owner == writer {
        return Ok(());
    }
    Err(StateError::NotOwner {
        namespace: metadata.kind.namespace.clone(),
        resource_type: metadata.kind.resource_type.clone(),
        id: metadata.id.clone(),
        owner: metadata.owner.clone(),
        writer: writer.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn kind() -> Kind {
        Kind::new("runtime", "Things.test.dev")
    }

    fn write(state: &State, owner: &str, id: &str, spec: &str) -> Result<bool, StateError> {
        state.write(owner, &kind(), id, spec.into(), Vec::new(), BTreeMap::new())
    }

    #[test]
    fn writes_version_and_skip_what_did_not_change() {
        let state = State::new();
        assert!(write(&state, "a", "x", "one").unwrap());
        assert!(!write(&state, "a", "x", "one").unwrap());
        assert!(write(&state, "a", "x", "two").unwrap());
        let resource = state.get(&kind(), "x").unwrap();
        assert_eq!(resource.metadata.version, 2);
        assert_eq!(resource.yaml_spec, "two");
        assert_eq!(state.list(&kind()).len(), 1);
    }

    #[test]
    fn only_the_owner_changes_or_destroys() {
        let state = State::new();
        write(&state, "a", "x", "one").unwrap();
        assert!(matches!(
            write(&state, "b", "x", "two"),
            Err(StateError::NotOwner { .. })
        ));
        assert!(state.destroy("b", &kind(), "x").is_err());
        assert!(state.destroy("a", &kind(), "x").unwrap());
        assert!(state.get(&kind(), "x").is_none());
        assert!(!state.destroy("a", &kind(), "x").unwrap());
    }

    #[tokio::test]
    async fn a_watch_starts_with_the_contents_then_follows_changes() {
        let state = State::new();
        write(&state, "a", "x", "one").unwrap();
        write(&state, "a", "y", "one").unwrap();
        let mut watch = state.watch(
            &kind(),
            &WatchOptions {
                bootstrap_contents: true,
                ..WatchOptions::default()
            },
        );
        assert!(watch.bootstrapped);
        let ids: Vec<_> = watch
            .initial
            .iter()
            .map(|e| (e.kind, e.resource.metadata.id.as_str()))
            .collect();
        assert_eq!(ids, [(EventKind::Created, "x"), (EventKind::Created, "y")]);
        write(&state, "a", "x", "two").unwrap();
        state.destroy("a", &kind(), "y").unwrap();
        let updated = watch.next().await.unwrap();
        assert_eq!(updated.kind, EventKind::Updated);
        assert_eq!(updated.old.as_ref().unwrap().yaml_spec, "one");
        assert_eq!(updated.resource.yaml_spec, "two");
        let destroyed = watch.next().await.unwrap();
        assert_eq!(
            (destroyed.kind, destroyed.resource.metadata.id.as_str()),
            (EventKind::Destroyed, "y")
        );
    }

    #[tokio::test]
    async fn a_watch_of_one_resource_or_of_the_tail() {
        let state = State::new();
        for spec in ["1", "2", "3"] {
            write(&state, "a", "x", spec).unwrap();
        }
        write(&state, "a", "y", "1").unwrap();
        let mut one = state.watch(
            &kind(),
            &WatchOptions {
                id: Some("x".into()),
                ..WatchOptions::default()
            },
        );
        assert_eq!(one.initial.len(), 1);
        let tail = state.watch(
            &kind(),
            &WatchOptions {
                tail_events: 2,
                ..WatchOptions::default()
            },
        );
        assert!(!tail.bootstrapped);
        let tail: Vec<_> = tail
            .initial
            .iter()
            .map(|e| {
                (
                    e.resource.metadata.id.as_str(),
                    e.resource.yaml_spec.as_str(),
                )
            })
            .collect();
        assert_eq!(tail, [("x", "3"), ("y", "1")]);
        write(&state, "a", "y", "2").unwrap();
        write(&state, "a", "x", "4").unwrap();
        assert_eq!(one.next().await.unwrap().resource.yaml_spec, "4");
    }
}
