//! The generated clients call exactly the gRPC paths of the reference (`/<package>.<Service>/<Rpc>`),
//! and the generated servers announce the right service names.
//!
//! Each client is wired to a transport that records the request path and refuses the call, so no
//! network and no async runtime are needed: every call completes on its first poll.

use std::future::{self, Future};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use proto::cluster;
use proto::common;
use proto::cosi::resource as cosi;
use proto::inspect;
use proto::machine;
use proto::securityapi;
use proto::storage;
use proto::time as talos_time;
use tonic::codegen::http;
use tonic::codegen::tokio_stream;

const REFUSAL: &str = "path recorded";

/// A transport that remembers each request's path and answers every call with an error.
#[derive(Debug, Clone, Default)]
struct PathRecorder {
    paths: Arc<Mutex<Vec<String>>>,
}

impl PathRecorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.paths.lock().expect("recorder lock"))
    }
}

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for PathRecorder {
    type Response = http::Response<tonic::body::Body>;
    type Error = tonic::Status;
    type Future = future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        self.paths
            .lock()
            .expect("recorder lock")
            .push(request.uri().path().to_owned());
        future::ready(Err(tonic::Status::unavailable(REFUSAL)))
    }
}

/// Drives one client call to completion and checks it reached the recorder.
fn refused<T>(call: impl Future<Output = Result<T, tonic::Status>>) {
    let mut call = pin!(call);
    match call.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Err(status)) => assert_eq!(status.message(), REFUSAL, "{status:?}"),
        Poll::Ready(Ok(_)) => panic!("the recorder never answers successfully"),
        Poll::Pending => panic!("a call through the recorder must finish on its first poll"),
    }
}

fn paths(prefix: &str, rpcs: &[&str]) -> Vec<String> {
    rpcs.iter().map(|rpc| format!("/{prefix}/{rpc}")).collect()
}

#[test]
fn machine_service_has_all_54_rpcs_at_their_reference_paths() {
    let recorder = PathRecorder::default();
    let mut c = machine::machine_service_client::MachineServiceClient::new(recorder.clone());

    // In the order of the reference's RPC table (section 1.4).
    refused(c.apply_configuration(machine::ApplyConfigurationRequest::default()));
    refused(c.bootstrap(machine::BootstrapRequest::default()));
    refused(c.containers(machine::ContainersRequest::default()));
    refused(c.copy(machine::CopyRequest::default()));
    refused(c.cpu_freq_stats(()));
    refused(c.cpu_info(()));
    refused(c.disk_stats(()));
    refused(c.dmesg(machine::DmesgRequest::default()));
    refused(c.events(machine::EventsRequest::default()));
    refused(c.etcd_member_list(machine::EtcdMemberListRequest::default()));
    refused(c.etcd_remove_member_by_id(machine::EtcdRemoveMemberByIdRequest::default()));
    refused(c.etcd_leave_cluster(machine::EtcdLeaveClusterRequest::default()));
    refused(c.etcd_forfeit_leadership(machine::EtcdForfeitLeadershipRequest::default()));
    refused(c.etcd_recover(tokio_stream::iter(Vec::<common::Data>::new())));
    refused(c.etcd_snapshot(machine::EtcdSnapshotRequest::default()));
    refused(c.etcd_alarm_list(()));
    refused(c.etcd_alarm_disarm(()));
    refused(c.etcd_defragment(()));
    refused(c.etcd_status(()));
    refused(c.etcd_downgrade_validate(machine::EtcdDowngradeValidateRequest::default()));
    refused(c.etcd_downgrade_enable(machine::EtcdDowngradeEnableRequest::default()));
    refused(c.etcd_downgrade_cancel(()));
    refused(c.hostname(()));
    refused(c.kubeconfig(()));
    refused(c.list(machine::ListRequest::default()));
    refused(c.disk_usage(machine::DiskUsageRequest::default()));
    refused(c.load_avg(()));
    refused(c.logs(machine::LogsRequest::default()));
    refused(c.logs_containers(()));
    refused(c.memory(()));
    refused(c.mounts(()));
    refused(c.network_device_stats(()));
    refused(c.processes(()));
    refused(c.read(machine::ReadRequest::default()));
    refused(c.reboot(machine::RebootRequest::default()));
    refused(c.restart(machine::RestartRequest::default()));
    refused(c.rollback(machine::RollbackRequest::default()));
    refused(c.reset(machine::ResetRequest::default()));
    refused(c.service_list(()));
    refused(c.service_restart(machine::ServiceRestartRequest::default()));
    refused(c.service_start(machine::ServiceStartRequest::default()));
    refused(c.service_stop(machine::ServiceStopRequest::default()));
    refused(c.shutdown(machine::ShutdownRequest::default()));
    refused(c.stats(machine::StatsRequest::default()));
    refused(c.system_stat(()));
    refused(c.upgrade(machine::UpgradeRequest::default()));
    refused(c.version(()));
    refused(
        c.generate_client_configuration(machine::GenerateClientConfigurationRequest::default()),
    );
    refused(c.packet_capture(machine::PacketCaptureRequest::default()));
    refused(c.netstat(machine::NetstatRequest::default()));
    refused(c.meta_write(machine::MetaWriteRequest::default()));
    refused(c.meta_delete(machine::MetaDeleteRequest::default()));
    refused(c.image_list(machine::ImageListRequest::default()));
    refused(c.image_pull(machine::ImagePullRequest::default()));

    let expected = paths(
        "machine.MachineService",
        &[
            "ApplyConfiguration",
            "Bootstrap",
            "Containers",
            "Copy",
            "CPUFreqStats",
            "CPUInfo",
            "DiskStats",
            "Dmesg",
            "Events",
            "EtcdMemberList",
            "EtcdRemoveMemberByID",
            "EtcdLeaveCluster",
            "EtcdForfeitLeadership",
            "EtcdRecover",
            "EtcdSnapshot",
            "EtcdAlarmList",
            "EtcdAlarmDisarm",
            "EtcdDefragment",
            "EtcdStatus",
            "EtcdDowngradeValidate",
            "EtcdDowngradeEnable",
            "EtcdDowngradeCancel",
            "Hostname",
            "Kubeconfig",
            "List",
            "DiskUsage",
            "LoadAvg",
            "Logs",
            "LogsContainers",
            "Memory",
            "Mounts",
            "NetworkDeviceStats",
            "Processes",
            "Read",
            "Reboot",
            "Restart",
            "Rollback",
            "Reset",
            "ServiceList",
            "ServiceRestart",
            "ServiceStart",
            "ServiceStop",
            "Shutdown",
            "Stats",
            "SystemStat",
            "Upgrade",
            "Version",
            "GenerateClientConfiguration",
            "PacketCapture",
            "Netstat",
            "MetaWrite",
            "MetaDelete",
            "ImageList",
            "ImagePull",
        ],
    );
    assert_eq!(expected.len(), 54);
    assert_eq!(recorder.take(), expected);
}

#[test]
fn time_security_and_cosi_paths() {
    let recorder = PathRecorder::default();

    let mut time = talos_time::time_service_client::TimeServiceClient::new(recorder.clone());
    refused(time.time(()));
    refused(time.time_check(talos_time::TimeRequest::default()));
    assert_eq!(
        recorder.take(),
        paths("time.TimeService", &["Time", "TimeCheck"])
    );

    let mut security =
        securityapi::security_service_client::SecurityServiceClient::new(recorder.clone());
    refused(security.certificate(securityapi::CertificateRequest::default()));
    assert_eq!(
        recorder.take(),
        paths("securityapi.SecurityService", &["Certificate"])
    );

    let mut state = cosi::state_client::StateClient::new(recorder.clone());
    refused(state.get(cosi::GetRequest::default()));
    refused(state.list(cosi::ListRequest::default()));
    refused(state.watch(cosi::WatchRequest::default()));
    refused(state.create(cosi::CreateRequest::default()));
    refused(state.update(cosi::UpdateRequest::default()));
    refused(state.destroy(cosi::DestroyRequest::default()));
    refused(state.teardown(cosi::TeardownRequest::default()));
    refused(state.teardown_and_destroy(cosi::TeardownAndDestroyRequest::default()));
    assert_eq!(
        recorder.take(),
        paths(
            "cosi.resource.State",
            &[
                "Get",
                "List",
                "Watch",
                "Create",
                "Update",
                "Destroy",
                "Teardown",
                "TeardownAndDestroy",
            ],
        )
    );
}

#[test]
fn cluster_storage_and_inspect_paths() {
    let recorder = PathRecorder::default();

    let mut cluster = cluster::cluster_service_client::ClusterServiceClient::new(recorder.clone());
    refused(cluster.health_check(cluster::HealthCheckRequest::default()));
    assert_eq!(
        recorder.take(),
        paths("cluster.ClusterService", &["HealthCheck"])
    );

    let mut storage = storage::storage_service_client::StorageServiceClient::new(recorder.clone());
    refused(storage.disks(()));
    refused(storage.block_device_wipe(storage::BlockDeviceWipeRequest::default()));
    assert_eq!(
        recorder.take(),
        paths("storage.StorageService", &["Disks", "BlockDeviceWipe"])
    );

    let mut inspect = inspect::inspect_service_client::InspectServiceClient::new(recorder.clone());
    refused(inspect.controller_runtime_dependencies(()));
    assert_eq!(
        recorder.take(),
        paths("inspect.InspectService", &["ControllerRuntimeDependencies"])
    );
}

#[test]
fn servers_announce_the_reference_service_names() {
    assert_eq!(
        machine::machine_service_server::SERVICE_NAME,
        "machine.MachineService"
    );
    assert_eq!(
        talos_time::time_service_server::SERVICE_NAME,
        "time.TimeService"
    );
    assert_eq!(
        securityapi::security_service_server::SERVICE_NAME,
        "securityapi.SecurityService"
    );
    assert_eq!(cosi::state_server::SERVICE_NAME, "cosi.resource.State");
    assert_eq!(
        cluster::cluster_service_server::SERVICE_NAME,
        "cluster.ClusterService"
    );
    assert_eq!(
        storage::storage_service_server::SERVICE_NAME,
        "storage.StorageService"
    );
    assert_eq!(
        inspect::inspect_service_server::SERVICE_NAME,
        "inspect.InspectService"
    );
}
