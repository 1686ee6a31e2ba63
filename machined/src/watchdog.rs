//! The hardware watchdog of a `WatchdogTimerConfig` document, as upstream:
//!
//! - `runtime.WatchdogTimerConfigController`: the document →
//!   `WatchdogTimerConfigs.runtime.talos.dev/timer` (device, timeout: one minute when unset);
//! - `runtime.WatchdogTimerController` (PID 1 only: in dev mode the host's watchdogs are not
//!   machined's): opens the device, sets its timeout (`WDIOC_SETTIMEOUT`), feeds it
//!   (`WDIOC_KEEPALIVE`) at once and then every third of the timeout (each feed is a pass that
//!   asks to run again), and publishes `WatchdogTimerStatuses.runtime.talos.dev/timer` (device,
//!   timeout, feed interval). Another device closes the old one; no document closes it. A
//!   device is closed with the magic `V` first, so a watchdog machined lets go of never fires.
//!
//! If machined stops feeding (it hangs, or PID 1 dies), the watchdog resets the machine: that
//! is its purpose. A pass that cannot open, set or feed the device fails and the runtime retries
//! it with back-off (0.5 s doubling to 30 s, within the shortest timeout allowed, 10 s, at first).

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::future::BoxFuture;
use machineconfig::Config;
use machineconfig::documents::Document;
use resources::{Context, Controller, Kind, Requeue, Spec};
use serde::{Deserialize, Serialize};

use crate::controllers::{active_config, machine_config_kind};

/// The one config and status resource's id.
pub const TIMER_ID: &str = "timer";
/// The timeout of a document that names none (upstream's).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Feeds per timeout.
const FEEDS_PER_TIMEOUT: u32 = 3;

/// `WatchdogTimerConfigs.runtime.talos.dev`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchdogTimerConfigSpec {
    pub device: String,
    /// Go duration syntax (`1m0s`).
    pub timeout: String,
}

impl Spec for WatchdogTimerConfigSpec {
    const TYPE: &'static str = "WatchdogTimerConfigs.runtime.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// `WatchdogTimerStatuses.runtime.talos.dev`.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchdogTimerStatusSpec {
    pub device: String,
    pub timeout: String,
    pub feed_interval: String,
}

impl Spec for WatchdogTimerStatusSpec {
    const TYPE: &'static str = "WatchdogTimerStatuses.runtime.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// Whether the watchdog controllers apply `document` (it is not reported as unapplied).
pub fn applied_by_watchdog(document: &Document) -> bool {
    matches!(document, Document::WatchdogTimer(_))
}

/// The `WatchdogTimerConfig` document → `WatchdogTimerConfigs`.
pub struct WatchdogTimerConfigController;

impl Controller for WatchdogTimerConfigController {
    fn name(&self) -> &'static str {
        "runtime.WatchdogTimerConfigController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![machine_config_kind()]
    }

    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::of::<WatchdogTimerConfigSpec>()]
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            match configured(active_config(context)?.as_ref()) {
                Some(spec) => {
                    context.write(TIMER_ID, &spec).map_err(|e| e.to_string())?;
                }
                None => context
                    .keep_only::<WatchdogTimerConfigSpec>(&[])
                    .map_err(|e| e.to_string())?,
            }
            Ok(Requeue::Never)
        })
    }
}

fn configured(config: Option<&Config>) -> Option<WatchdogTimerConfigSpec> {
    config?
        .documents
        .iter()
        .find_map(|document| match document {
            Document::WatchdogTimer(timer) => {
                let timeout = timer
                    .timeout
                    .as_ref()
                    .map(|t| t.as_duration())
                    .filter(|t| !t.is_zero())
                    .unwrap_or(DEFAULT_TIMEOUT);
                Some(WatchdogTimerConfigSpec {
                    device: timer.device.clone(),
                    timeout: machineconfig::format_go_duration(timeout),
                })
            }
            _ => None,
        })
}

/// Opens watchdog devices (Linux: [`crate::os::watchdog::LinuxWatchdogs`]).
pub trait WatchdogDevices: Send + 'static {
    fn open(&mut self, device: &Path) -> std::io::Result<Box<dyn WatchdogDevice>>;
}

/// An open watchdog; dropping it disarms and closes it.
pub trait WatchdogDevice: Send {
    /// Sets the timeout in whole seconds.
    fn set_timeout(&mut self, seconds: u32) -> std::io::Result<()>;
    /// Resets the countdown.
    fn keep_alive(&mut self) -> std::io::Result<()>;
}

/// The open device, its path and the timeout it was given.
struct Armed {
    path: PathBuf,
    timeout: Duration,
    device: Box<dyn WatchdogDevice>,
}

/// `WatchdogTimerConfigs` → the device, fed; `WatchdogTimerStatuses`.
pub struct WatchdogTimerController<D: WatchdogDevices> {
    devices: D,
    armed: Option<Armed>,
}

impl<D: WatchdogDevices> WatchdogTimerController<D> {
    pub fn new(devices: D) -> Self {
        WatchdogTimerController {
            devices,
            armed: None,
        }
    }

    /// Opens and sets the device of `config` unless it is the one armed; returns the feed
    /// interval.
    fn arm(&mut self, config: &WatchdogTimerConfigSpec) -> Result<Duration, String> {
        let path = PathBuf::from(&config.device);
        let timeout = machineconfig::parse_go_duration(&config.timeout)
            .map_err(|error| format!("watchdog timeout {:?}: {error}", config.timeout))?;
        let seconds = u32::try_from(timeout.as_secs().max(1))
            .map_err(|_| format!("watchdog timeout {:?} is too long", config.timeout))?;
        if self.armed.as_ref().is_some_and(|a| a.path != path) {
            // Dropping it sends the magic close.
            self.armed = None;
        }
        let armed = match &mut self.armed {
            Some(armed) => armed,
            None => {
                let device = self
                    .devices
                    .open(&path)
                    .map_err(|error| format!("opening watchdog {}: {error}", path.display()))?;
                tracing::info!("opened hardware watchdog {}", path.display());
                self.armed.insert(Armed {
                    path: path.clone(),
                    timeout: Duration::ZERO,
                    device,
                })
            }
        };
        if armed.timeout != timeout {
            armed.device.set_timeout(seconds).map_err(|error| {
                format!(
                    "setting the timeout of watchdog {} to {seconds}s: {error}",
                    path.display()
                )
            })?;
            armed.timeout = timeout;
            tracing::info!(
                "hardware watchdog {} timeout {}",
                path.display(),
                config.timeout
            );
        }
        Ok(timeout / FEEDS_PER_TIMEOUT)
    }
}

impl<D: WatchdogDevices> Controller for WatchdogTimerController<D> {
    fn name(&self) -> &'static str {
        "runtime.WatchdogTimerController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![Kind::of::<WatchdogTimerConfigSpec>()]
    }

    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::of::<WatchdogTimerStatusSpec>()]
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let config = context
                .state()
                .get(&Kind::of::<WatchdogTimerConfigSpec>(), TIMER_ID)
                .map(|resource| {
                    serde_norway::from_str::<WatchdogTimerConfigSpec>(&resource.yaml_spec)
                })
                .transpose()
                .map_err(|error| format!("watchdog config: {error}"))?;
            let Some(config) = config else {
                if self.armed.take().is_some() {
                    tracing::info!("hardware watchdog closed");
                }
                context
                    .keep_only::<WatchdogTimerStatusSpec>(&[])
                    .map_err(|e| e.to_string())?;
                return Ok(Requeue::Never);
            };
            let feed_interval = self.arm(&config)?;
            if let Some(armed) = &mut self.armed {
                armed.device.keep_alive().map_err(|error| {
                    format!("feeding watchdog {}: {error}", armed.path.display())
                })?;
            }
            let status = WatchdogTimerStatusSpec {
                device: config.device.clone(),
                timeout: config.timeout.clone(),
                feed_interval: machineconfig::format_go_duration(feed_interval),
            };
            context
                .write(TIMER_ID, &status)
                .map_err(|e| e.to_string())?;
            Ok(Requeue::After(feed_interval))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Mutex};

    use resources::{Runtime, State};

    use super::*;
    use crate::controllers::test_inputs::write_config;

    /// What the fake devices were asked, in order.
    #[derive(Debug, Clone, PartialEq)]
    enum Call {
        Open(PathBuf),
        Timeout(PathBuf, u32),
        Feed(PathBuf),
        Close(PathBuf),
    }

    type Calls = Arc<Mutex<Vec<Call>>>;

    struct FakeDevices {
        calls: Calls,
    }

    struct FakeDevice {
        path: PathBuf,
        calls: Calls,
    }

    impl WatchdogDevices for FakeDevices {
        fn open(&mut self, device: &Path) -> std::io::Result<Box<dyn WatchdogDevice>> {
            if !device.starts_with("/dev") {
                return Err(std::io::ErrorKind::NotFound.into());
            }
            self.calls.lock().unwrap().push(Call::Open(device.into()));
            Ok(Box::new(FakeDevice {
                path: device.into(),
                calls: Arc::clone(&self.calls),
            }))
        }
    }

    impl WatchdogDevice for FakeDevice {
        fn set_timeout(&mut self, seconds: u32) -> std::io::Result<()> {
            let call = Call::Timeout(self.path.clone(), seconds);
            self.calls.lock().unwrap().push(call);
            Ok(())
        }

        fn keep_alive(&mut self) -> std::io::Result<()> {
            self.calls
                .lock()
                .unwrap()
                .push(Call::Feed(self.path.clone()));
            Ok(())
        }
    }

    impl Drop for FakeDevice {
        fn drop(&mut self) {
            self.calls
                .lock()
                .unwrap()
                .push(Call::Close(self.path.clone()));
        }
    }

    const WORKER: &str = "version: v1alpha1\nmachine:\n  type: worker\n";

    fn with_watchdog(device: &str, timeout: &str) -> String {
        format!(
            "{WORKER}---\napiVersion: v1alpha1\nkind: WatchdogTimerConfig\ndevice: {device}\n{timeout}"
        )
    }

    fn feeds(calls: &Calls, path: &str) -> usize {
        let wanted = Call::Feed(path.into());
        calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| **c == wanted)
            .count()
    }

    #[tokio::test]
    async fn the_device_is_armed_fed_every_third_of_its_timeout_moved_and_closed() {
        let state = Arc::new(State::new());
        let calls = Calls::default();
        let mut runtime = Runtime::new(Arc::clone(&state));
        runtime.register(WatchdogTimerConfigController);
        runtime.register(WatchdogTimerController::new(FakeDevices {
            calls: Arc::clone(&calls),
        }));
        runtime.start();
        // Shorter than validation allows (10 s), to keep the test short: the controller
        // takes what the config resource says.
        write_config(&state, &with_watchdog("/dev/watchdog0", "timeout: 3s\n"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            calls.lock().unwrap()[..3],
            [
                Call::Open("/dev/watchdog0".into()),
                Call::Timeout("/dev/watchdog0".into(), 3),
                Call::Feed("/dev/watchdog0".into()),
            ]
        );
        let status = state
            .get(&Kind::of::<WatchdogTimerStatusSpec>(), TIMER_ID)
            .unwrap();
        assert_eq!(
            status.yaml_spec,
            "device: /dev/watchdog0\ntimeout: 3s\nfeedInterval: 1s\n"
        );
        // Fed every second: three more times in the next 3.5 s (a pass woken by an input
        // change feeds once more).
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let fed = feeds(&calls, "/dev/watchdog0");
        assert!((4..=5).contains(&fed), "fed {fed} times");

        // No timeout: upstream's minute. Another device: the old one is closed first.
        write_config(&state, &with_watchdog("/dev/watchdog1", ""));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let calls_now = calls.lock().unwrap().clone();
        let closed = calls_now
            .iter()
            .position(|c| *c == Call::Close("/dev/watchdog0".into()))
            .unwrap();
        let tail = &calls_now[closed..];
        assert_eq!(
            tail[..4],
            [
                Call::Close("/dev/watchdog0".into()),
                Call::Open("/dev/watchdog1".into()),
                Call::Timeout("/dev/watchdog1".into(), 60),
                Call::Feed("/dev/watchdog1".into()),
            ]
        );
        let status = state
            .get(&Kind::of::<WatchdogTimerStatusSpec>(), TIMER_ID)
            .unwrap();
        assert_eq!(
            status.yaml_spec,
            "device: /dev/watchdog1\ntimeout: 1m0s\nfeedInterval: 20s\n"
        );

        // The document goes: the device is closed and the status removed.
        write_config(&state, WORKER);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            calls.lock().unwrap().last(),
            Some(&Call::Close("/dev/watchdog1".into()))
        );
        assert!(
            state
                .list(&Kind::of::<WatchdogTimerStatusSpec>())
                .is_empty()
        );
        let quiet = calls.lock().unwrap().len();
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            calls.lock().unwrap().len(),
            quiet,
            "nothing fed once closed"
        );
    }

    #[tokio::test]
    async fn a_device_that_cannot_be_opened_is_retried_and_has_no_status() {
        let state = Arc::new(State::new());
        let calls = Calls::default();
        let mut runtime = Runtime::new(Arc::clone(&state));
        runtime.register(WatchdogTimerConfigController);
        runtime.register(WatchdogTimerController::new(FakeDevices {
            calls: Arc::clone(&calls),
        }));
        let failures = runtime.failures();
        runtime.start();
        write_config(&state, &with_watchdog("/nope/watchdog", "timeout: 10s\n"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let error = failures
            .lock()
            .unwrap()
            .get("runtime.WatchdogTimerController")
            .cloned()
            .unwrap();
        assert!(
            error.starts_with("opening watchdog /nope/watchdog: "),
            "{error}"
        );
        assert!(
            state
                .list(&Kind::of::<WatchdogTimerStatusSpec>())
                .is_empty()
        );
        assert!(calls.lock().unwrap().is_empty());
    }
}
