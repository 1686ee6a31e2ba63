//! The talos-rs API contract: prost messages and tonic clients/servers generated from the
//! project's own `.proto` files in `protos/`.
//!
//! The protos restate upstream Talos' wire format (package, service, message and field names and
//! numbers) from the project's reference tables, so stock `talosctl` can talk to talos-rs. Each
//! proto package is one module here:
//!
//! | module | proto package | services |
//! |---|---|---|
//! | [`common`] | `common` | – (the `Metadata`/`Data`/`Empty` shapes every reply wraps) |
//! | [`machine`] | `machine` | `machine.MachineService` (all 54 RPCs), `machine.ImageService`, `machine.LifecycleService`, `machine.DebugService` |
//! | [`time`] | `time` | `time.TimeService` |
//! | [`securityapi`] | `securityapi` | `securityapi.SecurityService` (trustd) |
//! | [`cluster`] | `cluster` | `cluster.ClusterService` (HealthCheck) |
//! | [`storage`] | `storage` | `storage.StorageService` (Disks, BlockDeviceWipe) |
//! | [`inspect`] | `inspect` | `inspect.InspectService` |
//! | [`events`] | `events` | `events.EventSinkService` (the event sink machined streams to) |
//! | [`cosi::resource`] | `cosi.resource` | `cosi.resource.State` |
//! | [`cosi::resource::meta`] | `cosi.resource.meta` | – (specs of the `meta` namespace) |
//! | [`google::rpc`] | `google.rpc` | – (`Status` only) |
//! | [`talosrs::networkd`] | `talosrs.networkd` | `talosrs.networkd.NetworkService` (ours: machined to networkd) |
//! | [`talosrs::timed`] | `talosrs.timed` | `talosrs.timed.TimedService` (ours: machined to timed) |
//! | [`containerd::services`] | `containerd.services.{containers,tasks}.v1` | containerd's `Containers` and `Tasks` (the part machined uses; clients only) |
//!
//! Every service module has a `*_client` and a `*_server` submodule (for example
//! [`machine::machine_service_server::MachineServiceServer`]). `google.protobuf` well-known types
//! map to [`prost_types`] (`Empty` to `()`).
//!
//! Limits: only the services named above are declared. The other machine services without the
//! metadata wrapper (`LVMService`, `MDService`), `signerapi` and the
//! `talos.resource.definitions.*` spec messages are not part of this crate yet. The COSI write verbs (Create, Update, ...) have no field tables
//! in the reference; their shapes are our own and the Talos API denies them anyway.

/// Generated code from `protos/common/common.proto`.
#[allow(clippy::all)]
pub mod common {
    tonic::include_proto!("common");
}

/// Generated code from `protos/machine/machine.proto`.
#[allow(clippy::all)]
pub mod machine {
    tonic::include_proto!("machine");
}

/// Generated code from `protos/time/time.proto`.
#[allow(clippy::all)]
pub mod time {
    tonic::include_proto!("time");
}

/// Generated code from `protos/security/security.proto` (served by trustd).
#[allow(clippy::all)]
pub mod securityapi {
    tonic::include_proto!("securityapi");
}

/// Generated code from `protos/cluster/cluster.proto`.
#[allow(clippy::all)]
pub mod cluster {
    tonic::include_proto!("cluster");
}

/// Generated code from `protos/storage/storage.proto`.
#[allow(clippy::all)]
pub mod storage {
    tonic::include_proto!("storage");
}

/// Generated code from `protos/inspect/inspect.proto`.
#[allow(clippy::all)]
pub mod inspect {
    tonic::include_proto!("inspect");
}

/// Generated code from `protos/events/events.proto` (siderolink's event sink).
#[allow(clippy::all)]
pub mod events {
    tonic::include_proto!("events");
}

/// COSI, the resource API machined exposes read-only through apid.
pub mod cosi {
    /// Generated code from `protos/cosi/v1alpha1/{resource,state}.proto`.
    #[allow(clippy::all)]
    pub mod resource {
        tonic::include_proto!("cosi.resource");

        /// Generated code from `protos/cosi/v1alpha1/meta.proto`.
        #[allow(clippy::all)]
        pub mod meta {
            tonic::include_proto!("cosi.resource.meta");
        }
    }
}

/// Google's shared API types.
pub mod google {
    /// Generated code from `protos/google/rpc/status.proto`.
    #[allow(clippy::all)]
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

/// talos-rs' own internal APIs between its daemons (not part of upstream Talos).
pub mod talosrs {
    /// Generated code from `protos/networkd/networkd.proto` (networkd's API for machined).
    #[allow(clippy::all)]
    pub mod networkd {
        tonic::include_proto!("talosrs.networkd");
    }

    /// Generated code from `protos/talosrs/timed.proto` (timed's status and control API).
    #[allow(clippy::all)]
    pub mod timed {
        tonic::include_proto!("talosrs.timed");
    }
}

/// The part of containerd's API machined uses to run system services as tasks (containerd
/// 1.6's packages, field numbers as containerd's own protos).
pub mod containerd {
    /// Generated code from `protos/containerd/types.proto`.
    #[allow(clippy::all)]
    pub mod types {
        tonic::include_proto!("containerd.types");
    }

    /// `containerd.v1.types` (task processes).
    pub mod v1 {
        /// Generated code from `protos/containerd/task.proto`.
        #[allow(clippy::all)]
        pub mod types {
            tonic::include_proto!("containerd.v1.types");
        }
    }

    /// containerd's services.
    pub mod services {
        /// `containerd.services.containers`.
        pub mod containers {
            /// Generated code from `protos/containerd/containers.proto`.
            #[allow(clippy::all)]
            pub mod v1 {
                tonic::include_proto!("containerd.services.containers.v1");
            }
        }

        /// `containerd.services.tasks`.
        pub mod tasks {
            /// Generated code from `protos/containerd/tasks.proto`.
            #[allow(clippy::all)]
            pub mod v1 {
                tonic::include_proto!("containerd.services.tasks.v1");
            }
        }
    }
}
