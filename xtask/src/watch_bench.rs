//! The resource figures of `cargo xtask bench-node`: a config apply renaming the node, end to
//! end until a watcher through apid sees the new `HostnameSpec` (decode, validation, persisting,
//! the config resource, the controller, the watch), and the watch's own latency (the resource's
//! `updated` time, set by machined when it wrote it, to the event's arrival).

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use apiclient::Client;
use proto::cosi::resource::state_client::StateClient;
use proto::cosi::resource::{EventType, WatchOptions, WatchRequest};
use proto::machine::ApplyConfigurationRequest;
use proto::machine::apply_configuration_request::Mode;

use crate::figures::{Figure, Unit};

/// Renames per figure.
const APPLIES: usize = 50;

pub async fn measure(client: &Client, config: &str) -> anyhow::Result<Vec<Figure>> {
    if !config.contains("kind: HostnameConfig\nauto: stable\n") {
        bail!("the generated config has no HostnameConfig document to rename through");
    }
    let mut state = StateClient::new(client.channel());
    let mut watch = state
        .watch(WatchRequest {
            namespace: "network".into(),
            r#type: "HostnameSpecs.net.talos.dev".into(),
            id: None,
            options: Some(WatchOptions {
                bootstrap_contents: true,
                ..WatchOptions::default()
            }),
            api_version: 1,
        })
        .await?
        .into_inner();
    while let Some(reply) = watch.message().await? {
        if reply
            .event
            .iter()
            .any(|e| e.event_type() == EventType::Bootstrapped)
        {
            break;
        }
    }
    let mut end_to_end = Vec::with_capacity(APPLIES);
    let mut watch_only = Vec::with_capacity(APPLIES);
    for i in 0..APPLIES {
        let renamed = config.replace(
            "kind: HostnameConfig\nauto: stable\n",
            &format!("kind: HostnameConfig\nauto: off\nhostname: bench-{i}\n"),
        );
        let started = Instant::now();
        client
            .machine()
            .apply_configuration(ApplyConfigurationRequest {
                data: renamed.into_bytes(),
                mode: Mode::NoReboot as i32,
                ..ApplyConfigurationRequest::default()
            })
            .await?;
        loop {
            let reply = watch.message().await?.context("the watch ended")?;
            let Some(event) = reply.event.into_iter().next() else {
                continue;
            };
            let resource = event.resource.unwrap_or_default();
            let spec = resource.spec.unwrap_or_default().yaml_spec;
            if !spec.contains(&format!("hostname: bench-{i}\n")) {
                continue;
            }
            end_to_end.push(started.elapsed());
            let updated = resource
                .metadata
                .and_then(|m| m.updated)
                .and_then(|t| SystemTime::try_from(t).ok())
                .context("the resource has no updated time")?;
            watch_only.push(
                SystemTime::now()
                    .duration_since(updated)
                    .unwrap_or_default(),
            );
            break;
        }
    }
    let (apply_p50, _) = print_figure(
        "config apply (rename) -> HostnameSpec event through apid",
        end_to_end,
    );
    let (watch_p50, watch_p99) = print_figure(
        "resource written -> watch event at the client (through apid)",
        watch_only,
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok(vec![
        Figure::new(
            "node",
            "config apply (rename) → HostnameSpec event through apid, p50",
            ms(apply_p50),
            Unit::Millis,
        ),
        Figure::new(
            "node",
            "resource written → watch event at the client through apid, p50",
            ms(watch_p50),
            Unit::Millis,
        ),
        Figure::new(
            "node",
            "resource written → watch event at the client through apid, p99",
            ms(watch_p99),
            Unit::Millis,
        )
        .at_most(5.0),
    ])
}

/// Prints p50 and p99 of `samples` and returns them.
fn print_figure(label: &str, mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    println!(
        "{label}: p50 {:.2?}, p99 {:.2?} ({} samples)",
        at(0.5),
        at(0.99),
        samples.len()
    );
    (at(0.5), at(0.99))
}
