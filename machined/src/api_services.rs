//! apid and trustd: keeps their certificates, their mode (maintenance or normal) and their
//! processes in step with the active config, and renews the certificates at half-life. What
//! apid serves with is published as `ApiCertificates.secrets.talos.dev/api` (sensitive).
//!
//! New inputs (config, or the names of `CertSANs.secrets.talos.dev/api`, which
//! [`crate::controllers::cert_sans`] derives from the hostname, the address and
//! `machine.certSANs`) issue new certificates at once; a mode change restarts apid
//! with the new command line; otherwise apid and trustd reload their TLS directories on SIGHUP,
//! so open streams carry on while new connections get the new certificates. When issuing fails
//! (a worker whose trustd is not reachable yet) it is retried with back-off, and certificates
//! already in use stay in use.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use proto::machine::{MachineStatusEvent, machine_status_event};
use resources::{Kind, WatchOptions};
use tokio::time::Instant;

use crate::certificates::{API_CERTIFICATES_OWNER, NodeTls, TRUSTD_PORT, TlsInputs};
use crate::controllers::cert_sans::CertSansSpec;
use crate::error::MachinedError;
use crate::etcd;
use crate::events::EventBus;
use crate::machine::Machine;
use crate::services::{
    ApiOperations, HealthCheck, HostMount, NodeEnvironment, ServiceError, ServiceSpec, Supervisor,
};
use crate::time_sync;

/// First and longest pause between attempts to issue certificates.
const RETRY_INITIAL: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// How often a control plane looks at etcd's members (trustd protects their addresses), and
/// how long one look may take.
const MEMBERS_PERIOD: Duration = Duration::from_secs(30);
const MEMBERS_TIMEOUT: Duration = Duration::from_secs(5);

/// Memory limit of apid's and trustd's containers (each uses under 10 MiB).
const API_SERVICE_MEMORY: u64 = 64 << 20;

/// The programs and certificate lifetime of the API services.
#[derive(Clone, Debug)]
pub struct ApiServices {
    pub apid: PathBuf,
    pub trustd: PathBuf,
    /// Lifetime of the serving certificates issued on this node (24 h as upstream).
    pub certificate_ttl: Duration,
}

/// What was last put in place.
struct Applied {
    inputs: TlsInputs,
    maintenance: bool,
    trustd_running: bool,
    renew_at: Instant,
    tls: NodeTls,
}

/// Runs until the config watch ends.
pub async fn keep_in_step(machine: Arc<Machine>, programs: ApiServices) {
    let mut changes = machine.config.subscribe();
    let names_kind = Kind::of::<CertSansSpec>();
    let mut names_changes = machine
        .resources
        .watch(&names_kind, &WatchOptions::default());
    let mut applied: Option<Applied> = None;
    let mut retry = RETRY_INITIAL;
    let mut clock_jumps = crate::clock::jumps();
    let mut clock_moved = false;
    let mut control_planes = Vec::new();
    loop {
        let config = changes.borrow_and_update().clone();
        // The names come from their controller; none yet (at boot): wait for them.
        let Some(names) = CertSansSpec::of_api(&machine.resources) else {
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                _ = names_changes.next() => {}
            }
            continue;
        };
        let mut inputs = TlsInputs::new(&names, config.as_deref());
        let control_plane = inputs
            .trust
            .as_ref()
            .is_some_and(|trust| trust.machine_type.is_control_plane());
        if control_plane {
            // The members come and go; a failed look keeps what was known.
            if let Ok(Ok(members)) =
                tokio::time::timeout(MEMBERS_TIMEOUT, etcd::member_addresses(&machine)).await
            {
                control_planes = members;
            }
            inputs.control_planes = control_planes.clone();
        }
        let changed = applied.as_ref().is_none_or(|a| a.inputs != inputs);
        let mut wake = applied.as_ref().map(|a| a.renew_at);
        if changed || clock_moved || wake.is_some_and(|at| Instant::now() >= at) {
            let result = match inputs.issue(programs.certificate_ttl).await {
                Ok(tls) => put_in_place(&machine, &programs, &tls, applied.as_ref())
                    .await
                    .map(|trustd_running| (tls, trustd_running)),
                Err(error) => Err(error),
            };
            match result {
                Ok((tls, trustd_running)) => {
                    if applied.is_none() {
                        crate::boot_clock::stamp("API certificates in place");
                    }
                    let published = machine.resources.write_spec(
                        API_CERTIFICATES_OWNER,
                        "api",
                        &tls.apid.spec(),
                    );
                    if let Err(error) = published {
                        tracing::error!(%error, "cannot publish the API certificates");
                    }
                    let renew_at = Instant::now() + tls.half_life();
                    if changed {
                        publish_status(&machine.events, tls.apid.maintenance);
                    }
                    if clock_moved {
                        tracing::info!("the clock was set: API certificates issued anew");
                    }
                    clock_moved = false;
                    tracing::info!(renew_in = ?tls.half_life(), "API certificates in place");
                    applied = Some(Applied {
                        inputs,
                        maintenance: tls.apid.maintenance,
                        trustd_running,
                        renew_at,
                        tls,
                    });
                    retry = RETRY_INITIAL;
                    wake = Some(renew_at);
                }
                Err(error) => {
                    tracing::error!(%error, retry_in = ?retry, "cannot put the API certificates in place");
                    wake = Some(Instant::now() + retry);
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
        if control_plane {
            let look = Instant::now() + MEMBERS_PERIOD;
            wake = Some(wake.map_or(look, |at| at.min(look)));
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            names = names_changes.next() => if names.is_none() {
                // Fell behind the names' events: follow them again (the names are read anew).
                names_changes = machine.resources.watch(&names_kind, &WatchOptions::default());
            },
            () = sleep_until(wake) => {}
            // After a jump back, certificates issued before are not valid yet: they are
            // issued anew. Otherwise they are kept (issued anew after a jump forward, they
            // would not be valid yet for clients whose clock was right) and only the renewal
            // is counted again on the new clock.
            jumped = clock_jumps.changed() => if let (Ok(()), Some(applied)) = (jumped, &mut applied) {
                if applied.tls.valid_now() {
                    applied.renew_at = Instant::now() + applied.tls.half_life();
                } else {
                    clock_moved = true;
                }
            },
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Writes the TLS directories and starts, restarts or signals apid and trustd; returns whether
/// trustd runs.
async fn put_in_place(
    machine: &Machine,
    programs: &ApiServices,
    tls: &NodeTls,
    previous: Option<&Applied>,
) -> Result<bool, MachinedError> {
    tls.apid.write(&machine.layout.apid_tls_dir())?;
    let apid = apid_spec(machine, &programs.apid, tls.apid.maintenance);
    match previous {
        None => start_service(&machine.services, apid).await?,
        Some(previous) if previous.maintenance != tls.apid.maintenance => {
            // Let the ApplyConfiguration reply leave through apid first.
            tokio::time::sleep(Duration::from_millis(500)).await;
            machine.services.update(apid).await?;
            machine.services.restart("apid").await?;
        }
        Some(_) => {
            machine.services.signal("apid", Signal::SIGHUP).await?;
        }
    }
    let trustd_was_running = previous.is_some_and(|p| p.trustd_running);
    match &tls.trustd {
        Some(trustd) => {
            trustd.write(&machine.layout.trustd_tls_dir())?;
            if trustd_was_running {
                machine.services.signal("trustd", Signal::SIGHUP).await?;
            } else {
                // trustd signs with validity from now: wait (bounded) for the clock.
                time_sync::wait_until_synced(machine).await;
                start_service(&machine.services, trustd_spec(machine, programs)).await?;
            }
            Ok(true)
        }
        None => {
            if trustd_was_running {
                machine.services.stop("trustd").await?;
            }
            Ok(false)
        }
    }
}

async fn start_service(services: &Supervisor, spec: ServiceSpec) -> Result<(), MachinedError> {
    let id = spec.id.clone();
    match services.register(spec.clone()).await {
        Ok(()) => {}
        Err(ServiceError::AlreadyRegistered { .. }) => services.update(spec).await?,
        Err(error) => return Err(error.into()),
    }
    services.start(&id).await?;
    Ok(())
}

fn inherited_env() -> Vec<(String, String)> {
    std::env::var("RUST_LOG")
        .map(|filter| vec![("RUST_LOG".to_string(), filter)])
        .unwrap_or_default()
}

fn apid_spec(machine: &Machine, apid: &std::path::Path, maintenance: bool) -> ServiceSpec {
    let mut args = vec![
        "--listen".to_string(),
        machine.api_address.to_string(),
        "--machined-socket".to_string(),
        machine.layout.machine_socket().display().to_string(),
        "--tls-dir".to_string(),
        machine.layout.apid_tls_dir().display().to_string(),
        "--local-name".to_string(),
        machine.hostname(),
        "--local-name".to_string(),
        machine.address().to_string(),
    ];
    if maintenance {
        args.push("--maintenance".to_string());
    }
    let spec = ServiceSpec {
        args,
        env: inherited_env(),
        node_environment: NodeEnvironment::RestartWithoutProxies,
        health_check: Some(HealthCheck::tcp(machine.api_address)),
        api: ApiOperations::NONE,
        mounts: vec![
            HostMount::read_only(machine.layout.machine_socket_dir()),
            HostMount::read_only(machine.layout.apid_tls_dir()),
        ],
        memory_limit: Some(API_SERVICE_MEMORY),
        ..ServiceSpec::process("apid", apid)
    };
    // In maintenance apid is machined's own child, off containerd's path, as upstream serves
    // maintenance from machined itself: the first API answer does not wait for containerd.
    if maintenance {
        spec
    } else {
        machine.system_service(spec)
    }
}

fn trustd_spec(machine: &Machine, programs: &ApiServices) -> ServiceSpec {
    let address = std::net::SocketAddr::new(machine.address(), TRUSTD_PORT);
    let args = vec![
        "--listen".to_string(),
        address.to_string(),
        "--tls-dir".to_string(),
        machine.layout.trustd_tls_dir().display().to_string(),
        "--certificate-ttl-seconds".to_string(),
        programs.certificate_ttl.as_secs().max(1).to_string(),
    ];
    machine.system_service(ServiceSpec {
        args,
        env: inherited_env(),
        health_check: Some(HealthCheck::tcp(address)),
        api: ApiOperations::NONE,
        mounts: vec![HostMount::read_only(machine.layout.trustd_tls_dir())],
        memory_limit: Some(API_SERVICE_MEMORY),
        ..ServiceSpec::process("trustd", &programs.trustd)
    })
}

fn publish_status(events: &EventBus, maintenance: bool) {
    let stage = if maintenance {
        machine_status_event::MachineStage::Maintenance
    } else {
        machine_status_event::MachineStage::Running
    };
    events.publish(
        &MachineStatusEvent {
            stage: stage as i32,
            status: Some(machine_status_event::MachineStatus {
                ready: true,
                unmet_conditions: Vec::new(),
            }),
        },
        None,
    );
}
