//! The machine API (`machine.MachineService`) on machined's Unix socket.
//!
//! Handlers are thin: unpack the request, call plain functions of the submodules, and convert
//! [`MachinedError`] into a gRPC status (in `error.rs`, the one place that does). Every reply
//! leaves `metadata` unset: apid fills it when it fans a call out. RPCs not implemented here
//! answer `Unimplemented` (the generated default).

mod authorization;
mod config;
mod containers;
mod control_plane;
mod files;
mod health;
mod host;
mod images;
mod inspect;
mod installs;
mod lifecycle;
mod logs;
mod packet_capture;
mod resources;
mod services;
mod storage;
mod time;
mod upgrade;

use std::sync::Arc;

use proto::common::Data;
use proto::machine::machine_service_server::MachineService;
use proto::machine::*;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

pub use authorization::{AuthorizationLayer, CallerRoles};
pub use files::FileWalks;
pub use health::HealthApi;
pub use images::ImageApi;
pub(crate) use images::require_system_namespace;
pub use inspect::InspectApi;
pub use installs::LifecycleApi;
pub use resources::ResourceApi;
pub use storage::StorageApi;
pub use time::TimeApi;

use crate::error::MachinedError;
use crate::machine::Machine;

/// `machine.MachineService` served from a [`Machine`].
#[derive(Clone, Debug)]
pub struct MachineApi {
    machine: Arc<Machine>,
}

impl MachineApi {
    pub fn new(machine: Arc<Machine>) -> Self {
        MachineApi { machine }
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn reply<T>(result: Result<T, MachinedError>) -> Reply<T> {
    result.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl MachineService for MachineApi {
    async fn version(&self, _: Request<()>) -> Reply<VersionResponse> {
        Ok(Response::new(host::version(&self.machine)))
    }

    async fn hostname(&self, _: Request<()>) -> Reply<HostnameResponse> {
        Ok(Response::new(HostnameResponse {
            messages: vec![Hostname {
                metadata: None,
                hostname: self.machine.hostname(),
            }],
        }))
    }

    async fn bootstrap(&self, request: Request<BootstrapRequest>) -> Reply<BootstrapResponse> {
        reply(control_plane::bootstrap(&self.machine, request.into_inner()).await)
    }

    async fn etcd_recover(
        &self,
        request: Request<tonic::Streaming<Data>>,
    ) -> Reply<EtcdRecoverResponse> {
        reply(control_plane::recover(&self.machine, request.into_inner()).await)
    }

    async fn etcd_member_list(
        &self,
        _: Request<EtcdMemberListRequest>,
    ) -> Reply<EtcdMemberListResponse> {
        reply(control_plane::member_list(&self.machine).await)
    }

    async fn etcd_status(&self, _: Request<()>) -> Reply<EtcdStatusResponse> {
        reply(control_plane::status(&self.machine).await)
    }

    async fn etcd_remove_member_by_id(
        &self,
        request: Request<EtcdRemoveMemberByIdRequest>,
    ) -> Reply<EtcdRemoveMemberByIdResponse> {
        reply(control_plane::remove_member(&self.machine, request.into_inner()).await)
    }

    async fn etcd_leave_cluster(
        &self,
        _: Request<EtcdLeaveClusterRequest>,
    ) -> Reply<EtcdLeaveClusterResponse> {
        reply(control_plane::leave(&self.machine).await)
    }

    async fn etcd_forfeit_leadership(
        &self,
        _: Request<EtcdForfeitLeadershipRequest>,
    ) -> Reply<EtcdForfeitLeadershipResponse> {
        reply(control_plane::forfeit_leadership(&self.machine).await)
    }

    async fn etcd_alarm_list(&self, _: Request<()>) -> Reply<EtcdAlarmListResponse> {
        reply(control_plane::alarm_list(&self.machine).await)
    }

    async fn etcd_alarm_disarm(&self, _: Request<()>) -> Reply<EtcdAlarmDisarmResponse> {
        reply(control_plane::alarm_disarm(&self.machine).await)
    }

    async fn etcd_defragment(&self, _: Request<()>) -> Reply<EtcdDefragmentResponse> {
        reply(control_plane::defragment(&self.machine).await)
    }

    async fn kubeconfig(&self, _: Request<()>) -> Reply<BoxStream<Data>> {
        reply(control_plane::kubeconfig(&self.machine))
    }

    async fn etcd_snapshot(&self, _: Request<EtcdSnapshotRequest>) -> Reply<BoxStream<Data>> {
        reply(control_plane::snapshot(&self.machine).await)
    }

    async fn memory(&self, _: Request<()>) -> Reply<MemoryResponse> {
        reply(host::memory(&self.machine).await)
    }

    async fn load_avg(&self, _: Request<()>) -> Reply<LoadAvgResponse> {
        reply(host::load_avg(&self.machine).await)
    }

    async fn system_stat(&self, _: Request<()>) -> Reply<SystemStatResponse> {
        reply(host::system_stat(&self.machine).await)
    }

    async fn cpu_info(&self, _: Request<()>) -> Reply<CpuInfoResponse> {
        reply(host::cpu_info(&self.machine).await)
    }

    async fn cpu_freq_stats(&self, _: Request<()>) -> Reply<CpuFreqStatsResponse> {
        reply(host::cpu_freq_stats(&self.machine).await)
    }

    async fn processes(&self, _: Request<()>) -> Reply<ProcessesResponse> {
        reply(host::processes(&self.machine).await)
    }

    async fn mounts(&self, _: Request<()>) -> Reply<MountsResponse> {
        reply(host::mounts(&self.machine).await)
    }

    async fn disk_stats(&self, _: Request<()>) -> Reply<DiskStatsResponse> {
        reply(host::disk_stats(&self.machine).await)
    }

    async fn network_device_stats(&self, _: Request<()>) -> Reply<NetworkDeviceStatsResponse> {
        reply(host::network_device_stats(&self.machine).await)
    }

    async fn netstat(&self, request: Request<NetstatRequest>) -> Reply<NetstatResponse> {
        reply(host::netstat(&self.machine, request.into_inner()).await)
    }

    async fn list(&self, request: Request<ListRequest>) -> Reply<BoxStream<FileInfo>> {
        reply(files::list(&self.machine, request.into_inner()).await)
    }

    async fn read(&self, request: Request<ReadRequest>) -> Reply<BoxStream<Data>> {
        reply(files::read(&self.machine, request.into_inner()).await)
    }

    async fn copy(&self, request: Request<CopyRequest>) -> Reply<BoxStream<Data>> {
        reply(files::copy(&self.machine, request.into_inner()).await)
    }

    async fn disk_usage(
        &self,
        request: Request<DiskUsageRequest>,
    ) -> Reply<BoxStream<DiskUsageInfo>> {
        reply(files::disk_usage(&self.machine, request.into_inner()).await)
    }

    async fn logs(&self, request: Request<LogsRequest>) -> Reply<BoxStream<Data>> {
        reply(logs::logs(&self.machine, request.into_inner()).await)
    }

    async fn logs_containers(&self, _: Request<()>) -> Reply<LogsContainersResponse> {
        reply(logs::logs_containers(&self.machine).await)
    }

    async fn dmesg(&self, request: Request<DmesgRequest>) -> Reply<BoxStream<Data>> {
        reply(logs::dmesg(request.into_inner()))
    }

    async fn packet_capture(
        &self,
        request: Request<PacketCaptureRequest>,
    ) -> Reply<BoxStream<Data>> {
        reply(packet_capture::capture(request.into_inner()))
    }

    async fn events(&self, request: Request<EventsRequest>) -> Reply<BoxStream<Event>> {
        reply(services::events(&self.machine, request.into_inner()))
    }

    async fn service_list(&self, _: Request<()>) -> Reply<ServiceListResponse> {
        reply(services::list(&self.machine).await)
    }

    async fn service_start(
        &self,
        request: Request<ServiceStartRequest>,
    ) -> Reply<ServiceStartResponse> {
        reply(services::start(&self.machine, request.into_inner().id).await)
    }

    async fn service_stop(
        &self,
        request: Request<ServiceStopRequest>,
    ) -> Reply<ServiceStopResponse> {
        reply(services::stop(&self.machine, request.into_inner().id).await)
    }

    async fn service_restart(
        &self,
        request: Request<ServiceRestartRequest>,
    ) -> Reply<ServiceRestartResponse> {
        reply(services::restart(&self.machine, request.into_inner().id).await)
    }

    async fn containers(&self, request: Request<ContainersRequest>) -> Reply<ContainersResponse> {
        reply(containers::containers(&self.machine, request.into_inner()).await)
    }

    async fn stats(&self, request: Request<StatsRequest>) -> Reply<StatsResponse> {
        reply(containers::stats(&self.machine, request.into_inner()).await)
    }

    async fn restart(&self, request: Request<RestartRequest>) -> Reply<RestartResponse> {
        reply(containers::restart(&self.machine, request.into_inner()).await)
    }

    async fn apply_configuration(
        &self,
        request: Request<ApplyConfigurationRequest>,
    ) -> Reply<ApplyConfigurationResponse> {
        let roles = CallerRoles::of(&request);
        reply(config::apply(&self.machine, &roles, request.into_inner()).await)
    }

    async fn generate_client_configuration(
        &self,
        request: Request<GenerateClientConfigurationRequest>,
    ) -> Reply<GenerateClientConfigurationResponse> {
        reply(config::generate_client_configuration(
            &self.machine,
            request.into_inner(),
        ))
    }

    async fn upgrade(&self, request: Request<UpgradeRequest>) -> Reply<UpgradeResponse> {
        reply(upgrade::upgrade(&self.machine, request.into_inner()).await)
    }

    async fn rollback(&self, _: Request<RollbackRequest>) -> Reply<RollbackResponse> {
        reply(upgrade::rollback(&self.machine).await)
    }

    async fn meta_write(&self, request: Request<MetaWriteRequest>) -> Reply<MetaWriteResponse> {
        reply(upgrade::meta_write(&self.machine, request.into_inner()).await)
    }

    async fn meta_delete(&self, request: Request<MetaDeleteRequest>) -> Reply<MetaDeleteResponse> {
        reply(upgrade::meta_delete(&self.machine, request.into_inner()).await)
    }

    async fn reset(&self, request: Request<ResetRequest>) -> Reply<ResetResponse> {
        reply(lifecycle::reset(&self.machine, request.into_inner()).await)
    }

    async fn reboot(&self, request: Request<RebootRequest>) -> Reply<RebootResponse> {
        let mode = request.get_ref().mode();
        reply(lifecycle::reboot(&self.machine, mode).await)
    }

    async fn shutdown(&self, _: Request<ShutdownRequest>) -> Reply<ShutdownResponse> {
        reply(lifecycle::shutdown(&self.machine).await)
    }
}
