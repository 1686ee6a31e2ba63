//! `talosctl inject serviceaccount` (alias `sa`): adds a Talos API service account to
//! Kubernetes manifests, as upstream does. For every workload (Pod, Deployment, StatefulSet,
//! DaemonSet, ReplicaSet, Job, CronJob) the pod template gets a volume `talos-secrets` from the
//! secret `<name>-talos-secrets` mounted at `/var/run/secrets/talos.dev` in each container, and a
//! `talos.dev/v1alpha1` `ServiceAccount` of that name with `--roles` follows the workload (a
//! cluster running Talos turns it into that secret, with a talosconfig for those roles). Other
//! documents pass through unchanged; a workload already injected is left as it is.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_norway::{Mapping, Value};

/// Where the service account's secret is mounted in each container.
const MOUNT_PATH: &str = "/var/run/secrets/talos.dev";
const VOLUME: &str = "talos-secrets";

#[derive(Debug, Subcommand)]
pub enum InjectCommand {
    /// Inject Talos API ServiceAccount into Kubernetes manifests
    #[command(visible_alias = "sa")]
    Serviceaccount(ServiceaccountArgs),
}

#[derive(Debug, Args)]
pub struct ServiceaccountArgs {
    /// File with Kubernetes manifests to be injected with ServiceAccount ('-' for standard input)
    #[arg(short = 'f', long)]
    pub file: PathBuf,
    /// Roles to add to the generated ServiceAccount manifests
    #[arg(short = 'r', long, value_delimiter = ',', default_value = "os:reader")]
    pub roles: Vec<String>,
}

pub fn run(command: InjectCommand) -> anyhow::Result<()> {
    let InjectCommand::Serviceaccount(args) = command;
    let text = if args.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?
    };
    print!("{}", inject(&text, &args.roles)?);
    Ok(())
}

/// The manifests of `text` with service accounts for `roles` injected.
fn inject(text: &str, roles: &[String]) -> anyhow::Result<String> {
    if let Some(role) = roles.iter().find(|r| authz::Role::from_name(r).is_none()) {
        bail!(
            "unknown role {role:?}: the roles are os:admin, os:operator, os:reader, os:etcd:backup and os:impersonator"
        );
    }
    let mut out = Vec::new();
    for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let mut manifest: Value = serde::Deserialize::deserialize(document)
            .with_context(|| format!("manifest {}: not YAML", index + 1))?;
        if manifest.is_null() {
            continue;
        }
        let account =
            inject_one(&mut manifest, roles).with_context(|| format!("manifest {}", index + 1))?;
        out.push(manifest);
        out.extend(account);
    }
    let mut text = String::new();
    for (index, manifest) in out.iter().enumerate() {
        if index > 0 {
            text.push_str("---\n");
        }
        text.push_str(&serde_norway::to_string(manifest)?);
    }
    Ok(text)
}

/// Injects `manifest` if it is a workload; returns its service account.
fn inject_one(manifest: &mut Value, roles: &[String]) -> anyhow::Result<Option<Value>> {
    let kind = manifest
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let path: &[&str] = match kind.as_str() {
        "Pod" => &["spec"],
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            &["spec", "template", "spec"]
        }
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return Ok(None),
    };
    let metadata = manifest.get("metadata");
    let name = metadata
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .with_context(|| format!("a {kind} without metadata.name"))?
        .to_string();
    let namespace = metadata.and_then(|m| m.get("namespace")).cloned();
    let secret = format!("{name}-{VOLUME}");
    let mut pod = &mut *manifest;
    for key in path {
        pod = pod
            .get_mut(*key)
            .with_context(|| format!("{kind} {name}: no {}", path.join(".")))?;
    }
    let pod = pod
        .as_mapping_mut()
        .with_context(|| format!("{kind} {name}: {} is not a mapping", path.join(".")))?;
    let volumes = sequence(pod, "volumes")?;
    if !volumes
        .iter()
        .any(|v| v.get("name").and_then(Value::as_str) == Some(VOLUME))
    {
        volumes.push(serde_norway::from_str(&format!(
            "name: {VOLUME}\nsecret:\n  secretName: {secret}\n"
        ))?);
    }
    let containers = sequence(pod, "containers")?;
    for container in containers.iter_mut() {
        let container = container
            .as_mapping_mut()
            .with_context(|| format!("{kind} {name}: a container is not a mapping"))?;
        let mounts = sequence(container, "volumeMounts")?;
        if !mounts
            .iter()
            .any(|m| m.get("name").and_then(Value::as_str) == Some(VOLUME))
        {
            mounts.push(serde_norway::from_str(&format!(
                "mountPath: {MOUNT_PATH}\nname: {VOLUME}\n"
            ))?);
        }
    }
    let mut account_metadata = Mapping::new();
    account_metadata.insert("name".into(), secret.into());
    if let Some(namespace) = namespace {
        account_metadata.insert("namespace".into(), namespace);
    }
    let mut account = Mapping::new();
    account.insert("apiVersion".into(), "talos.dev/v1alpha1".into());
    account.insert("kind".into(), "ServiceAccount".into());
    account.insert("metadata".into(), account_metadata.into());
    let mut spec = Mapping::new();
    spec.insert(
        "roles".into(),
        Value::Sequence(roles.iter().cloned().map(Value::from).collect()),
    );
    account.insert("spec".into(), spec.into());
    Ok(Some(account.into()))
}

/// The sequence at `key` of `mapping`, made empty when absent.
fn sequence<'a>(mapping: &'a mut Mapping, key: &str) -> anyhow::Result<&'a mut Vec<Value>> {
    let value = mapping
        .entry(key.into())
        .or_insert_with(|| Value::Sequence(Vec::new()));
    if value.is_null() {
        *value = Value::Sequence(Vec::new());
    }
    value
        .as_sequence_mut()
        .with_context(|| format!("{key} is not a list"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cockpit
  namespace: tools
spec:
  template:
    spec:
      containers:
      - name: app
        image: example/app:1
      - name: sidecar
        image: example/sidecar:1
        volumeMounts:
        - name: data
          mountPath: /data
---
apiVersion: v1
kind: Service
metadata:
  name: cockpit
";

    fn documents(text: &str) -> Vec<Value> {
        serde_norway::Deserializer::from_str(text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect()
    }

    #[test]
    fn a_workload_gets_the_volume_mounts_and_its_service_account() {
        let roles = vec!["os:reader".to_string(), "os:etcd:backup".to_string()];
        let out = documents(&inject(DEPLOYMENT, &roles).unwrap());
        assert_eq!(out.len(), 3);
        let pod = &out[0]["spec"]["template"]["spec"];
        assert_eq!(pod["volumes"][0]["name"], "talos-secrets");
        assert_eq!(
            pod["volumes"][0]["secret"]["secretName"],
            "cockpit-talos-secrets"
        );
        for container in pod["containers"].as_sequence().unwrap() {
            let mounts = container["volumeMounts"].as_sequence().unwrap();
            assert!(
                mounts
                    .iter()
                    .any(|m| m["mountPath"] == MOUNT_PATH && m["name"] == VOLUME)
            );
        }
        assert_eq!(pod["containers"][1]["volumeMounts"][0]["name"], "data");
        let account = &out[1];
        assert_eq!(account["apiVersion"], "talos.dev/v1alpha1");
        assert_eq!(account["kind"], "ServiceAccount");
        assert_eq!(account["metadata"]["name"], "cockpit-talos-secrets");
        assert_eq!(account["metadata"]["namespace"], "tools");
        assert_eq!(account["spec"]["roles"][1], "os:etcd:backup");
        assert_eq!(out[2]["kind"], "Service");
    }

    #[test]
    fn injecting_twice_changes_nothing_more_and_cron_jobs_and_pods_are_workloads() {
        let roles = vec!["os:reader".to_string()];
        let once = inject(DEPLOYMENT, &roles).unwrap();
        let twice = documents(&inject(&once, &roles).unwrap());
        let pod = &twice[0]["spec"]["template"]["spec"];
        assert_eq!(pod["volumes"].as_sequence().unwrap().len(), 1);
        assert_eq!(
            pod["containers"][0]["volumeMounts"]
                .as_sequence()
                .unwrap()
                .len(),
            1
        );

        let cron = "kind: CronJob\nmetadata: {name: backup}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: b, image: x}]\n";
        let out = documents(&inject(cron, &roles).unwrap());
        assert_eq!(
            out[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
            "backup-talos-secrets"
        );
        let pod = "kind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: x}]\n";
        assert_eq!(
            documents(&inject(pod, &roles).unwrap())[1]["metadata"]["name"],
            "p-talos-secrets"
        );
    }

    #[test]
    fn bad_roles_and_broken_workloads_are_refused() {
        let error = inject(DEPLOYMENT, &["os:root".to_string()]).unwrap_err();
        assert!(error.to_string().contains("unknown role \"os:root\""));
        let nameless = "kind: Deployment\nspec:\n  template:\n    spec:\n      containers: []\n";
        let error = format!("{:#}", inject(nameless, &["os:reader".into()]).unwrap_err());
        assert!(
            error.contains("manifest 1: a Deployment without metadata.name"),
            "{error}"
        );
        let no_template = "kind: Deployment\nmetadata: {name: d}\nspec: {}\n";
        let error = format!(
            "{:#}",
            inject(no_template, &["os:reader".into()]).unwrap_err()
        );
        assert!(error.contains("no spec.template.spec"), "{error}");
    }
}
