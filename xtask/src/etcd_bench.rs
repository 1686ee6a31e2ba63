//! etcd's figures, on the three nodes of `bench-node`: bootstrap of the first node → three
//! voting members (and when each joined), then `etcd status` latency through apid.

use std::time::{Duration, Instant};

use anyhow::bail;
use apiclient::{Client, NodeTarget};
use proto::machine::{BootstrapRequest, EtcdMemberListRequest};

use crate::figures::{Figure, Unit};
use crate::node_bench::{latency, print_latency};

pub async fn measure(client: &Client, first: &str) -> anyhow::Result<Vec<Figure>> {
    let target = NodeTarget::for_nodes(&[first.to_string()]);
    let started = Instant::now();
    client
        .machine()
        .bootstrap(target.request(BootstrapRequest::default())?)
        .await?;
    let bootstrapped = started.elapsed();
    let mut joined: Vec<(String, Duration)> = Vec::new();
    let deadline = started + Duration::from_secs(120);
    while joined.len() < 3 {
        if Instant::now() > deadline {
            bail!("etcd did not reach three voting members: {joined:?}");
        }
        let request = target.request(EtcdMemberListRequest::default())?;
        if let Ok(reply) = client.machine().etcd_member_list(request).await {
            for list in reply.into_inner().messages {
                for member in list.members.iter().filter(|m| !m.is_learner) {
                    if !joined.iter().any(|(name, _)| *name == member.hostname) {
                        joined.push((member.hostname.clone(), started.elapsed()));
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("etcd (Debian's etcd 3.4, dev mode)");
    println!(
        "  Bootstrap call: {:.0} ms; three voting members after {:.2} s",
        bootstrapped.as_secs_f64() * 1e3,
        joined[2].1.as_secs_f64()
    );
    for (name, at) in &joined {
        println!("  {name} voting after {:.2} s", at.as_secs_f64());
    }
    let status = latency(|| {
        let mut machine = client.machine();
        let request = target.request(());
        async move {
            let request = request.map_err(|e| tonic::Status::internal(e.to_string()))?;
            machine.etcd_status(request).await.map(drop)
        }
    })
    .await?;
    print_latency("etcd status via apid -> machined -> etcd", &status);
    let mut figures = vec![Figure::new(
        "node",
        "etcd `Bootstrap` → three voting members",
        joined[2].1.as_secs_f64(),
        Unit::Seconds,
    )];
    figures.extend(status.figures("node", "`etcd status` via apid → machined → etcd"));
    Ok(figures)
}
