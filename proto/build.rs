//! Generates the prost messages and tonic clients/servers from `protos/`.
//!
//! Needs `protoc` (Debian `protobuf-compiler`) and the well-known types it finds next to itself
//! (Debian `libprotobuf-dev`, `/usr/include/google/protobuf`).

use std::error::Error;

/// Every file of our contract, relative to `protos/`.
const PROTOS: &[&str] = &[
    "google/rpc/status.proto",
    "common/common.proto",
    "machine/machine.proto",
    "machine/image.proto",
    "machine/lifecycle.proto",
    "machine/debug.proto",
    "time/time.proto",
    "networkd/networkd.proto",
    "security/security.proto",
    "cluster/cluster.proto",
    "storage/storage.proto",
    "inspect/inspect.proto",
    "events/events.proto",
    "cosi/v1alpha1/resource.proto",
    "cosi/v1alpha1/state.proto",
    "cosi/v1alpha1/meta.proto",
    "talosrs/timed.proto",
    "containerd/types.proto",
    "containerd/task.proto",
    "containerd/containers.proto",
    "containerd/tasks.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=protos");
    let files: Vec<String> = PROTOS.iter().map(|p| format!("protos/{p}")).collect();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // RPCs a server does not implement answer Unimplemented, as upstream does.
        .generate_default_stubs(true)
        .compile_protos(&files, &["protos".to_owned()])?;
    Ok(())
}
