//! ApplyConfiguration and GenerateClientConfiguration.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use proto::machine::apply_configuration_request::Mode;
use proto::machine::*;

use super::CallerRoles;
use crate::error::MachinedError;
use crate::machine::Machine;
use crate::node_config::{ApplyMode, BeforeApply};

/// Try mode's default timeout, as upstream.
const DEFAULT_TRY_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) async fn apply(
    machine: &Machine,
    roles: &CallerRoles,
    request: ApplyConfigurationRequest,
) -> Result<ApplyConfigurationResponse, MachinedError> {
    let maintenance = machine.in_maintenance();
    // The method table admits readers for the maintenance case only.
    if !maintenance && !roles.is_admin() {
        return Err(MachinedError::PermissionDenied("not authorized".into()));
    }
    let requested = Mode::try_from(request.mode)
        .map_err(|_| MachinedError::InvalidArgument(format!("unknown mode {}", request.mode)))?;
    let (mode, reported) = match (requested, maintenance) {
        // What `talosctl cluster create` sends to maintenance nodes.
        (Mode::Reboot | Mode::Auto | Mode::NoReboot, true) => (ApplyMode::NoReboot, Mode::NoReboot),
        (Mode::Staged | Mode::Try, true) => {
            return Err(MachinedError::InvalidArgument(format!(
                "mode {} is not supported in maintenance mode",
                requested.as_str_name()
            )));
        }
        (Mode::Reboot, false) => (ApplyMode::NoReboot, Mode::Reboot),
        (Mode::Auto | Mode::NoReboot, false) => (ApplyMode::NoReboot, Mode::NoReboot),
        (Mode::Staged, false) => (ApplyMode::Staged, Mode::Staged),
        (Mode::Try, false) => {
            let timeout = match request.try_mode_timeout {
                None => DEFAULT_TRY_TIMEOUT,
                Some(d) => Duration::try_from(d)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        MachinedError::InvalidArgument("try_mode_timeout must be positive".into())
                    })?,
            };
            (ApplyMode::Try(timeout), Mode::Try)
        }
    };
    // Booted from the ISO: a config naming an install disk is installed there first.
    let installed = Arc::new(OnceLock::new());
    let before = machine
        .install_media
        .as_ref()
        .filter(|_| maintenance && !request.dry_run)
        .map(|dir| install_first(crate::install::Media::new(dir), Arc::clone(&installed)));
    let mut outcome = machine
        .config
        .apply_with(&request.data, mode, request.dry_run, before)
        .await?;
    let reboot_after_install = match installed.get() {
        Some(true) => {
            outcome.details = "Installed to the disk; rebooting into the installed system".into();
            true
        }
        Some(false) => {
            outcome.details = "Installed to the disk, which boots at the next reboot; running \
                               from memory until then"
                .into();
            false
        }
        None => false,
    };
    if (reported == Mode::Reboot || reboot_after_install) && !request.dry_run {
        super::lifecycle::request(machine, crate::machine::Lifecycle::Reboot).await?;
    }
    Ok(ApplyConfigurationResponse {
        messages: vec![ApplyConfiguration {
            metadata: None,
            warnings: outcome.warnings,
            mode: reported as i32,
            mode_details: outcome.details,
        }],
    })
}

/// The install of a config's `machine.install.disk` (or `UnattendedInstallConfig`), run
/// before the config is applied; sets `installed` to whether to reboot once it wrote the disk.
fn install_first(media: crate::install::Media, installed: Arc<OnceLock<bool>>) -> BeforeApply {
    Box::new(move |config, text| {
        let disks = || {
            crate::block::BlockDevices {
                sys: "/sys".into(),
                dev: "/dev".into(),
            }
            .disks(None)
        };
        let Some(plan) = crate::install::Plan::from_config(config, disks)? else {
            tracing::info!("the config names no install disk: it runs from memory");
            return Ok(());
        };
        crate::install::install(&plan, &media, text)?;
        let _ = installed.set(plan.reboot);
        Ok(())
    })
}

pub(super) fn generate_client_configuration(
    machine: &Machine,
    request: GenerateClientConfigurationRequest,
) -> Result<GenerateClientConfigurationResponse, MachinedError> {
    let config = machine.config.current().ok_or_else(|| {
        MachinedError::FailedPrecondition("the node has no machine config yet".into())
    })?;
    let v1alpha1 = config.v1alpha1.as_ref();
    let ca = v1alpha1
        .and_then(|v| v.machine.as_ref()?.ca.as_ref())
        .filter(|ca| ca.key.is_some())
        .ok_or_else(|| {
            MachinedError::FailedPrecondition(
                "client configuration can only be generated on control plane nodes".into(),
            )
        })?;
    if request.roles.is_empty() {
        return Err(MachinedError::InvalidArgument(
            "at least one role is required".into(),
        ));
    }
    for role in &request.roles {
        if authz::Role::from_name(role).is_none() {
            return Err(MachinedError::InvalidArgument(format!(
                "unknown role {role:?}"
            )));
        }
    }
    let ttl = request
        .crt_ttl
        .and_then(|d| Duration::try_from(d).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| MachinedError::InvalidArgument("crt_ttl must be positive".into()))?;
    let ttl = time::Duration::try_from(ttl)
        .map_err(|_| MachinedError::InvalidArgument("crt_ttl is too large".into()))?;

    let authority = pki::CertificateAuthority::from_pair(ca)?;
    let client = authority.issue_client_certificate(
        "talosctl",
        &request.roles,
        pki::Validity::from_now(ttl),
    )?;
    let (ca_pem, crt, key) = (
        authority.certificate_pem().to_string(),
        client.crt.unwrap_or_default(),
        client.key.unwrap_or_default(),
    );
    let cluster = v1alpha1
        .and_then(|v| v.cluster.as_ref()?.cluster_name.clone())
        .unwrap_or_else(|| "talos".to_string());
    let context_name = match request.roles.as_slice() {
        [role] => format!("{}@{cluster}", role.trim_start_matches("os:")),
        _ => cluster,
    };
    let mut talosconfig = talosconfig::Talosconfig::default();
    let endpoint = machine.address().to_string();
    talosconfig
        .add(
            &context_name,
            talosconfig::Context::new(vec![endpoint], &ca_pem, &crt, &key),
        )
        .and_then(|()| talosconfig.use_context(&context_name))
        .map_err(|e| MachinedError::InvalidArgument(e.to_string()))?;
    Ok(GenerateClientConfigurationResponse {
        messages: vec![GenerateClientConfiguration {
            metadata: None,
            ca: ca_pem.into_bytes(),
            crt: crt.into_bytes(),
            key: key.into_bytes(),
            talosconfig: talosconfig.to_yaml().into_bytes(),
        }],
    })
}
