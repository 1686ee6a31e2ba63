//! Controllers and the runtime that runs them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio::sync::Notify;
use tokio::sync::broadcast::error::RecvError;

use crate::{Kind, Spec, State, StateError};

/// First and longest pause before a failed reconcile is tried again.
const RETRY_INITIAL: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// When a controller wants to run again without an input changing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// Only when an input changes.
    Never,
    /// After this long (for outputs that follow something outside the state, like a clock).
    After(Duration),
}

/// A controller: reads its inputs, computes its outputs, writes them and removes the ones it
/// no longer wants. It writes nothing but its outputs, and nobody else writes those.
pub trait Controller: Send + 'static {
    /// Names the controller (and owns its outputs).
    fn name(&self) -> &'static str;
    /// The kinds whose changes make it run.
    fn inputs(&self) -> Vec<Kind>;
    /// The kinds it writes.
    fn outputs(&self) -> Vec<Kind>;
    /// One pass. An error is retried with back-off by the runtime.
    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>>;
}

/// What a controller sees of the state: everything to read, its outputs to write.
#[derive(Debug)]
pub struct Context {
    state: Arc<State>,
    name: &'static str,
    outputs: Vec<Kind>,
}

impl Context {
    /// The whole state, to read.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Writes `spec` as resource `id` of its kind (a declared output).
    pub fn write<S: Spec>(&self, id: &str, spec: &S) -> Result<bool, StateError> {
        self.output::<S>()?;
        self.state.write_spec(self.name, id, spec)
    }

    /// Removes every resource of `S`'s kind this controller wrote, except `keep`.
    pub fn keep_only<S: Spec>(&self, keep: &[&str]) -> Result<(), StateError> {
        let kind = self.output::<S>()?;
        for resource in self.state.list(&kind) {
            let id = resource.metadata.id.as_str();
            if resource.metadata.owner == self.name && !keep.contains(&id) {
                self.state.destroy(self.name, &kind, id)?;
            }
        }
        Ok(())
    }

    fn output<S: Spec>(&self) -> Result<Kind, StateError> {
        let kind = Kind::of::<S>();
        if self.outputs.contains(&kind) {
            Ok(kind)
        } else {
            Err(StateError::UndeclaredOutput {
                controller: self.name.to_string(),
                namespace: kind.namespace,
                resource_type: kind.resource_type,
            })
        }
    }
}

/// A controller's place in the dependency graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerGraph {
    pub name: &'static str,
    pub inputs: Vec<Kind>,
    pub outputs: Vec<Kind>,
}

/// Told how long each controller's first pass took (its name and the time), when it ends.
pub type FirstPassObserver = Arc<dyn Fn(&'static str, Duration) + Send + Sync>;

/// Runs controllers over one state.
pub struct Runtime {
    state: Arc<State>,
    controllers: Vec<Box<dyn Controller>>,
    failures: Arc<Mutex<BTreeMap<&'static str, String>>>,
    first_pass: Option<FirstPassObserver>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("controllers", &self.graph())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    pub fn new(state: Arc<State>) -> Self {
        Runtime {
            state,
            controllers: Vec::new(),
            failures: Arc::default(),
            first_pass: None,
        }
    }

    /// Has `observer` told of every controller's first pass (a boot timeline shows them).
    pub fn observe_first_passes(&mut self, observer: FirstPassObserver) {
        self.first_pass = Some(observer);
    }

    /// Adds a controller (run from [`Runtime::start`] on).
    pub fn register(&mut self, controller: impl Controller) {
        self.controllers.push(Box::new(controller));
    }

    /// Who reads and writes what.
    pub fn graph(&self) -> Vec<ControllerGraph> {
        self.controllers
            .iter()
            .map(|c| ControllerGraph {
                name: c.name(),
                inputs: c.inputs(),
                outputs: c.outputs(),
            })
            .collect()
    }

    /// The controllers whose last pass failed, with why.
    pub fn failures(&self) -> Arc<Mutex<BTreeMap<&'static str, String>>> {
        Arc::clone(&self.failures)
    }

    /// Runs every controller on its own task: once at once, then whenever an input changes or
    /// it asked to run again; a failed pass is retried with back-off (0.5 s doubling to 30 s).
    pub fn start(self) {
        for controller in self.controllers {
            let context = Context {
                state: Arc::clone(&self.state),
                name: controller.name(),
                outputs: controller.outputs(),
            };
            let wake = Arc::new(Notify::new());
            for kind in controller.inputs() {
                let mut changes = self.state.subscribe(&kind);
                let wake = Arc::clone(&wake);
                tokio::spawn(async move {
                    loop {
                        match changes.recv().await {
                            Ok(_) | Err(RecvError::Lagged(_)) => wake.notify_one(),
                            Err(RecvError::Closed) => return,
                        }
                    }
                });
            }
            tokio::spawn(run_controller(
                controller,
                context,
                wake,
                Arc::clone(&self.failures),
                self.first_pass.clone(),
            ));
        }
    }
}

async fn run_controller(
    mut controller: Box<dyn Controller>,
    context: Context,
    wake: Arc<Notify>,
    failures: Arc<Mutex<BTreeMap<&'static str, String>>>,
    mut first_pass: Option<FirstPassObserver>,
) {
    let name = controller.name();
    let mut retry = RETRY_INITIAL;
    loop {
        let started = Instant::now();
        let result = controller.reconcile(&context).await;
        if let Some(observer) = first_pass.take() {
            observer(name, started.elapsed());
        }
        let again = match result {
            Ok(requeue) => {
                retry = RETRY_INITIAL;
                if failures
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(name)
                    .is_some()
                {
                    tracing::info!(controller = name, "controller recovered");
                }
                match requeue {
                    Requeue::Never => None,
                    Requeue::After(after) => Some(after),
                }
            }
            Err(error) => {
                tracing::warn!(controller = name, %error, retry_in = ?retry, "controller failed");
                failures
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(name, error);
                let after = retry;
                retry = (retry * 2).min(RETRY_MAX);
                Some(after)
            }
        };
        match again {
            None => wake.notified().await,
            Some(after) => {
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(after) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde::Serialize;

    use super::*;
    use crate::WatchOptions;

    #[derive(Serialize)]
    struct Doubled {
        value: u64,
    }

    impl Spec for Doubled {
        const TYPE: &'static str = "Doubleds.test.dev";
        const NAMESPACE: &'static str = "test";
    }

    /// Doubles every number written as `Inputs.test.dev`; fails once on purpose.
    struct Doubler {
        failed_once: bool,
    }

    impl Controller for Doubler {
        fn name(&self) -> &'static str {
            "DoublerController"
        }

        fn inputs(&self) -> Vec<Kind> {
            vec![Kind::new("test", "Inputs.test.dev")]
        }

        fn outputs(&self) -> Vec<Kind> {
            vec![Kind::of::<Doubled>()]
        }

        fn reconcile<'a>(
            &'a mut self,
            context: &'a Context,
        ) -> BoxFuture<'a, Result<Requeue, String>> {
            Box::pin(async move {
                if !self.failed_once {
                    self.failed_once = true;
                    return Err("not yet".into());
                }
                let inputs = context.state().list(&self.inputs()[0]);
                let mut ids = Vec::new();
                for input in &inputs {
                    let value: u64 = input.yaml_spec.trim().parse().map_err(|_| "not a number")?;
                    context
                        .write(&input.metadata.id, &Doubled { value: value * 2 })
                        .map_err(|e| e.to_string())?;
                    ids.push(input.metadata.id.as_str());
                }
                context
                    .keep_only::<Doubled>(&ids)
                    .map_err(|e| e.to_string())?;
                Ok(Requeue::Never)
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_controller_follows_its_inputs_and_retries_failures() {
        let state = Arc::new(State::new());
        let input = Kind::new("test", "Inputs.test.dev");
        let mut watch = state.watch(&Kind::of::<Doubled>(), &WatchOptions::default());
        let mut runtime = Runtime::new(Arc::clone(&state));
        runtime.register(Doubler { failed_once: false });
        assert_eq!(runtime.graph()[0].outputs, [Kind::of::<Doubled>()]);
        let failures = runtime.failures();
        runtime.start();
        let write = |id: &str, value: &str| {
            state
                .write(
                    "test",
                    &input,
                    id,
                    value.into(),
                    Vec::new(),
                    BTreeMap::new(),
                )
                .unwrap()
        };
        write("a", "2");
        let created = watch.next().await.unwrap();
        assert_eq!(created.resource.yaml_spec, "value: 4\n");
        assert_eq!(created.resource.metadata.owner, "DoublerController");
        assert!(
            failures.lock().unwrap().is_empty(),
            "recovered after the retry"
        );
        write("a", "5");
        assert_eq!(
            watch.next().await.unwrap().resource.yaml_spec,
            "value: 10\n"
        );
        state.destroy("test", &input, "a").unwrap();
        assert_eq!(
            watch.next().await.unwrap().kind,
            crate::EventKind::Destroyed
        );
        // Nobody else may write the controller's outputs.
        let denied = state.write(
            "someone",
            &Kind::of::<Doubled>(),
            "a",
            "value: 1\n".into(),
            Vec::new(),
            BTreeMap::new(),
        );
        assert!(denied.is_ok(), "a destroyed output may be written anew");
        let denied = Context {
            state: Arc::clone(&state),
            name: "Other",
            outputs: Vec::new(),
        }
        .write("b", &Doubled { value: 1 });
        assert!(matches!(denied, Err(StateError::UndeclaredOutput { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_pass_of_each_controller_is_observed_once() {
        let state = Arc::new(State::new());
        let mut runtime = Runtime::new(Arc::clone(&state));
        runtime.register(Doubler { failed_once: false });
        let seen: Arc<Mutex<Vec<&'static str>>> = Arc::default();
        let observed = Arc::clone(&seen);
        runtime.observe_first_passes(Arc::new(move |name, _took| {
            observed.lock().unwrap().push(name);
        }));
        runtime.start();
        // The first pass fails on purpose; the retry after 0.5 s is not a first pass.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(*seen.lock().unwrap(), ["DoublerController"]);
    }
}
