//! Wire compatibility of the generated types with the reference tables.
//!
//! Every test builds bytes by hand, field by field, with the numbers and wire types the reference
//! gives, then decodes them with the generated types and checks where each value landed.
//! `decode_exact` also re-encodes the result and demands the very same bytes: prost drops fields
//! it does not know, so a field declared under a wrong number cannot go unnoticed.

use prost::Message;
use proto::cluster;
use proto::common;
use proto::cosi::resource as cosi;
use proto::google::rpc;
use proto::inspect;
use proto::machine;
use proto::securityapi;
use proto::storage;
use proto::time as talos_time;

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LENGTH_DELIMITED: u64 = 2;

/// A protobuf message written by hand: each call appends one field (key, then payload).
#[derive(Debug, Default, Clone)]
struct Fields(Vec<u8>);

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

impl Fields {
    fn new() -> Self {
        Self::default()
    }

    fn key(&mut self, field: u32, wire_type: u64) {
        push_varint(&mut self.0, (u64::from(field) << 3) | wire_type);
    }

    fn varint(mut self, field: u32, value: u64) -> Self {
        self.key(field, VARINT);
        push_varint(&mut self.0, value);
        self
    }

    /// int32/int64/enum: negative values are sign-extended to ten bytes.
    fn int(self, field: u32, value: i64) -> Self {
        self.varint(field, value as u64)
    }

    fn bool(self, field: u32, value: bool) -> Self {
        self.varint(field, u64::from(value))
    }

    fn double(mut self, field: u32, value: f64) -> Self {
        self.key(field, FIXED64);
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }

    fn bytes(mut self, field: u32, value: &[u8]) -> Self {
        self.key(field, LENGTH_DELIMITED);
        push_varint(&mut self.0, value.len() as u64);
        self.0.extend_from_slice(value);
        self
    }

    fn string(self, field: u32, value: &str) -> Self {
        self.bytes(field, value.as_bytes())
    }

    fn message(self, field: u32, value: Fields) -> Self {
        self.bytes(field, &value.0)
    }

    /// A packed repeated varint field (how proto3 writes repeated scalars and enums).
    fn packed(self, field: u32, values: &[u64]) -> Self {
        let mut body = Vec::new();
        for value in values {
            push_varint(&mut body, *value);
        }
        self.bytes(field, &body)
    }

    fn build(self) -> Vec<u8> {
        self.0
    }
}

/// `google.protobuf.Timestamp` and `Duration` share this shape: 1 seconds int64, 2 nanos int32.
/// Like any proto3 encoder, it leaves out zero nanos.
fn seconds_nanos(seconds: i64, nanos: i32) -> Fields {
    let fields = Fields::new().int(1, seconds);
    if nanos == 0 {
        fields
    } else {
        fields.int(2, i64::from(nanos))
    }
}

/// Decodes `bytes` as `M` and checks that re-encoding gives back exactly `bytes`.
fn decode_exact<M: Message + Default + std::fmt::Debug>(bytes: &[u8]) -> M {
    let decoded = M::decode(bytes).expect("hand-built bytes must decode");
    assert_eq!(
        decoded.encode_to_vec(),
        bytes,
        "re-encoding {} lost or moved a field: {decoded:?}",
        std::any::type_name::<M>()
    );
    decoded
}

#[test]
fn the_hand_encoder_writes_textbook_bytes() {
    // The protobuf encoding guide's examples: field 1 = 150, field 2 = "testing".
    assert_eq!(Fields::new().varint(1, 150).build(), [0x08, 0x96, 0x01]);
    assert_eq!(
        Fields::new().string(2, "testing").build(),
        [0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']
    );
    assert_eq!(
        Fields::new().int(1, -1).build(),
        [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
        ]
    );
    assert_eq!(
        Fields::new().double(3, 1.0).build(),
        [0x19, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]
    );
}

fn version_element(hostname: &str, tag: &str) -> Fields {
    Fields::new()
        .message(
            1,
            Fields::new().string(1, hostname).string(2, "node is down"),
        )
        .message(
            2,
            Fields::new()
                .string(1, tag)
                .string(2, "abc123")
                .string(3, "2026-08-01T00:00:00Z")
                .string(4, "rust1.95")
                .string(5, "linux")
                .string(6, "amd64"),
        )
        .message(3, Fields::new().string(1, "metal").string(2, "metal"))
        .message(4, Fields::new().bool(1, true))
}

#[test]
fn version_response() {
    let bytes = Fields::new()
        .message(1, version_element("10.5.0.2", "v1.14.0"))
        .build();
    let response: machine::VersionResponse = decode_exact(&bytes);

    let [version] = response.messages.as_slice() else {
        panic!("expected one element, got {:?}", response.messages);
    };
    let metadata = version.metadata.as_ref().expect("metadata");
    assert_eq!(metadata.hostname, "10.5.0.2");
    assert_eq!(metadata.error, "node is down");
    let info = version.version.as_ref().expect("version");
    assert_eq!(info.tag, "v1.14.0");
    assert_eq!(info.sha, "abc123");
    assert_eq!(info.built, "2026-08-01T00:00:00Z");
    assert_eq!(info.go_version, "rust1.95");
    assert_eq!(info.os, "linux");
    assert_eq!(info.arch, "amd64");
    let platform = version.platform.as_ref().expect("platform");
    assert_eq!(
        (platform.name.as_str(), platform.mode.as_str()),
        ("metal", "metal")
    );
    assert!(version.features.as_ref().expect("features").rbac);
}

#[test]
fn concatenated_responses_decode_as_one_response_with_all_elements() {
    // apid's one-to-many merge: it concatenates each node's serialized reply.
    let mut merged = Fields::new()
        .message(1, version_element("10.5.0.2", "v1.14.0"))
        .build();
    merged.extend(
        Fields::new()
            .message(1, version_element("10.5.0.3", "v1.13.2"))
            .build(),
    );

    let response = machine::VersionResponse::decode(merged.as_slice()).expect("merged reply");
    let hosts_and_tags: Vec<(&str, &str)> = response
        .messages
        .iter()
        .map(|v| {
            (
                v.metadata.as_ref().expect("metadata").hostname.as_str(),
                v.version.as_ref().expect("version").tag.as_str(),
            )
        })
        .collect();
    assert_eq!(
        hosts_and_tags,
        [("10.5.0.2", "v1.14.0"), ("10.5.0.3", "v1.13.2")]
    );
}

#[test]
fn metadata_appended_to_an_element_body_is_picked_up() {
    // apid injects the hostname by appending a serialized Empty{metadata} to the element body.
    let mut element = Fields::new()
        .message(2, Fields::new().string(1, "v1.14.0"))
        .build();
    element.extend(
        Fields::new()
            .message(1, Fields::new().string(1, "node-a"))
            .build(),
    );
    let bytes = Fields::new().bytes(1, &element).build();

    let response = machine::VersionResponse::decode(bytes.as_slice()).expect("reply");
    let version = &response.messages[0];
    assert_eq!(
        version.metadata.as_ref().expect("metadata").hostname,
        "node-a"
    );
    assert_eq!(version.version.as_ref().expect("version").tag, "v1.14.0");
}

#[test]
fn failed_node_element_carries_rpc_status_in_metadata() {
    let detail = Fields::new()
        .string(1, "type.googleapis.com/google.rpc.ErrorInfo")
        .bytes(2, b"\x0a\x03why");
    let status = Fields::new()
        .int(1, 14)
        .string(2, "connection refused")
        .message(3, detail);
    let metadata = Fields::new()
        .string(1, "10.5.0.9")
        .string(2, "rpc error: code = Unavailable")
        .message(3, status);
    let bytes = Fields::new()
        .message(1, Fields::new().message(1, metadata))
        .build();

    let response: common::EmptyResponse = decode_exact(&bytes);
    let metadata = response.messages[0].metadata.as_ref().expect("metadata");
    assert_eq!(metadata.hostname, "10.5.0.9");
    assert_eq!(metadata.error, "rpc error: code = Unavailable");
    let status: &rpc::Status = metadata.status.as_ref().expect("status");
    assert_eq!(status.code, 14);
    assert_eq!(status.message, "connection refused");
    assert_eq!(
        status.details[0].type_url,
        "type.googleapis.com/google.rpc.ErrorInfo"
    );
    assert_eq!(status.details[0].value, b"\x0a\x03why");

    // The same metadata sits at field 1 of any other element, e.g. a Version.
    let version_bytes = Fields::new()
        .message(1, Fields::new().message(1, metadata_fields_for("10.5.0.9")))
        .build();
    let versions: machine::VersionResponse = decode_exact(&version_bytes);
    assert_eq!(
        versions.messages[0]
            .metadata
            .as_ref()
            .expect("metadata")
            .hostname,
        "10.5.0.9"
    );
}

fn metadata_fields_for(hostname: &str) -> Fields {
    Fields::new().string(1, hostname)
}

#[test]
fn empty_response_and_data_chunks() {
    let bytes = Fields::new()
        .message(1, Fields::new().message(1, metadata_fields_for("a")))
        .message(1, Fields::new().message(1, metadata_fields_for("b")))
        .build();
    let response: common::EmptyResponse = decode_exact(&bytes);
    let hosts: Vec<&str> = response
        .messages
        .iter()
        .map(|e| e.metadata.as_ref().expect("metadata").hostname.as_str())
        .collect();
    assert_eq!(hosts, ["a", "b"]);

    let chunk: common::Data = decode_exact(
        &Fields::new()
            .message(1, metadata_fields_for("c"))
            .bytes(2, b"log line\n")
            .build(),
    );
    assert_eq!(chunk.bytes, b"log line\n");
}

#[test]
fn service_list_response() {
    let event = |msg: &str, state: &str, seconds: i64| {
        Fields::new()
            .string(1, msg)
            .string(2, state)
            .message(3, seconds_nanos(seconds, 500))
    };
    let info = Fields::new()
        .string(1, "etcd")
        .string(2, "Running")
        .message(
            3,
            Fields::new()
                .message(1, event("Starting service", "Starting", 1_700_000_000))
                .message(1, event("Service started", "Running", 1_700_000_005)),
        )
        .message(
            4,
            Fields::new()
                .bool(1, true)
                .bool(2, true)
                .string(3, "ok")
                .message(4, seconds_nanos(1_700_000_010, 42)),
        );
    let bytes = Fields::new()
        .message(1, Fields::new().message(2, info))
        .build();

    let response: machine::ServiceListResponse = decode_exact(&bytes);
    let service = &response.messages[0].services[0];
    assert_eq!(service.id, "etcd");
    assert_eq!(service.state, "Running");
    let events = &service.events.as_ref().expect("events").events;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].msg, "Service started");
    assert_eq!(events[1].state, "Running");
    let ts = events[1].ts.as_ref().expect("ts");
    assert_eq!((ts.seconds, ts.nanos), (1_700_000_005, 500));
    let health = service.health.as_ref().expect("health");
    assert!(health.unknown && health.healthy);
    assert_eq!(health.last_message, "ok");
    let last_change = health.last_change.as_ref().expect("last_change");
    assert_eq!(
        (last_change.seconds, last_change.nanos),
        (1_700_000_010, 42)
    );
}

#[test]
fn apply_configuration_request_and_response() {
    use machine::apply_configuration_request::Mode;

    let bytes = Fields::new()
        .bytes(1, b"version: v1alpha1\n")
        .int(4, 4)
        .bool(5, true)
        .message(6, seconds_nanos(90, 0))
        .build();
    let request: machine::ApplyConfigurationRequest = decode_exact(&bytes);
    assert_eq!(request.data, b"version: v1alpha1\n");
    assert_eq!(request.mode(), Mode::Try);
    assert!(request.dry_run);
    let timeout = request.try_mode_timeout.expect("try_mode_timeout");
    assert_eq!((timeout.seconds, timeout.nanos), (90, 0));

    // The enum values, as numbered in the reference.
    let modes = [
        Mode::Reboot,
        Mode::Auto,
        Mode::NoReboot,
        Mode::Staged,
        Mode::Try,
    ];
    assert_eq!(modes.map(|m| m as i32), [0, 1, 2, 3, 4]);

    let bytes = Fields::new()
        .message(
            1,
            Fields::new()
                .string(2, "deprecated field")
                .int(3, 2)
                .string(4, "Applied configuration without a reboot"),
        )
        .build();
    let response: machine::ApplyConfigurationResponse = decode_exact(&bytes);
    let applied = &response.messages[0];
    assert_eq!(applied.warnings, ["deprecated field"]);
    assert_eq!(applied.mode(), Mode::NoReboot);
    assert_eq!(
        applied.mode_details,
        "Applied configuration without a reboot"
    );
}

#[test]
fn event_with_service_state_payload() {
    use machine::service_state_event::Action;

    let payload = Fields::new()
        .string(1, "kubelet")
        .int(2, 3)
        .string(3, "Health check successful")
        .message(4, Fields::new().bool(2, true).string(3, "ok"));
    let bytes = Fields::new()
        .message(
            2,
            Fields::new()
                .string(1, "talos/runtime/machine.ServiceStateEvent")
                .message(2, payload),
        )
        .string(3, "d2j5rq0q8c4s73b0cdq0")
        .string(4, "6c0c2f1e-4b1a-4f5e-9d0a-3f1f2b3c4d5e")
        .build();

    let event: machine::Event = decode_exact(&bytes);
    assert_eq!(event.id, "d2j5rq0q8c4s73b0cdq0");
    assert_eq!(event.actor_id, "6c0c2f1e-4b1a-4f5e-9d0a-3f1f2b3c4d5e");
    let data = event.data.expect("data");
    assert_eq!(data.type_url, "talos/runtime/machine.ServiceStateEvent");

    let state: machine::ServiceStateEvent = decode_exact(&data.value);
    assert_eq!(state.service, "kubelet");
    assert_eq!(state.action(), Action::Running);
    assert_eq!(state.message, "Health check successful");
    let health = state.health.expect("health");
    assert!(health.healthy && !health.unknown);
    assert_eq!(health.last_message, "ok");

    let actions = [
        Action::Initialized,
        Action::Preparing,
        Action::Waiting,
        Action::Running,
        Action::Stopping,
        Action::Finished,
        Action::Failed,
        Action::Skipped,
        Action::Starting,
    ];
    assert_eq!(actions.map(|a| a as i32), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn machine_status_and_other_event_payloads() {
    use machine::machine_status_event::MachineStage;

    let bytes = Fields::new()
        .int(1, 4)
        .message(
            2,
            Fields::new()
                .bool(1, true)
                .message(2, Fields::new().string(1, "time").string(2, "not in sync")),
        )
        .build();
    let status: machine::MachineStatusEvent = decode_exact(&bytes);
    assert_eq!(status.stage(), MachineStage::Running);
    let inner = status.status.expect("status");
    assert!(inner.ready);
    assert_eq!(inner.unmet_conditions[0].name, "time");
    assert_eq!(inner.unmet_conditions[0].reason, "not in sync");
    assert_eq!(MachineStage::Upgrading as i32, 8);

    let sequence: machine::SequenceEvent = decode_exact(
        &Fields::new()
            .string(1, "boot")
            .int(2, 2)
            .message(3, Fields::new().int(1, 1).string(2, "locked"))
            .build(),
    );
    assert_eq!(sequence.sequence, "boot");
    assert_eq!(sequence.action(), machine::sequence_event::Action::Stop);
    let error = sequence.error.expect("error");
    assert_eq!(error.code(), common::Code::Locked);
    assert_eq!(error.message, "locked");

    let phase: machine::PhaseEvent =
        decode_exact(&Fields::new().string(1, "etc").int(2, 1).build());
    assert_eq!(phase.phase, "etc");
    assert_eq!(phase.action(), machine::phase_event::Action::Stop);

    let task: machine::TaskEvent =
        decode_exact(&Fields::new().string(1, "stopAllServices").int(2, 1).build());
    assert_eq!(task.task, "stopAllServices");
    assert_eq!(task.action(), machine::task_event::Action::Stop);

    let restart: machine::RestartEvent = decode_exact(&Fields::new().int(1, 0x0123_4567).build());
    assert_eq!(restart.cmd, 0x0123_4567);

    let load: machine::ConfigLoadErrorEvent = decode_exact(&Fields::new().string(1, "e1").build());
    assert_eq!(load.error, "e1");
    let validation: machine::ConfigValidationErrorEvent =
        decode_exact(&Fields::new().string(1, "e2").build());
    assert_eq!(validation.error, "e2");

    let address: machine::AddressEvent = decode_exact(
        &Fields::new()
            .string(1, "talos-1")
            .string(2, "10.5.0.2")
            .string(2, "fd00::2")
            .build(),
    );
    assert_eq!(address.hostname, "talos-1");
    assert_eq!(address.addresses, ["10.5.0.2", "fd00::2"]);
}

#[test]
fn events_request() {
    let request: machine::EventsRequest = decode_exact(
        &Fields::new()
            .int(1, -1)
            .string(2, "d2j5rq0q8c4s73b0cdq0")
            .int(3, 60)
            .string(4, "actor")
            .build(),
    );
    assert_eq!(request.tail_events, -1);
    assert_eq!(request.tail_id, "d2j5rq0q8c4s73b0cdq0");
    assert_eq!(request.tail_seconds, 60);
    assert_eq!(request.with_actor_id, "actor");
}

#[test]
fn file_info_all_twelve_fields() {
    let go_mode_dir = (1u64 << 31) | 0o755;
    let bytes = Fields::new()
        .message(1, metadata_fields_for("n1"))
        .string(2, "/var/log")
        .int(3, 4096)
        .varint(4, go_mode_dir)
        .int(5, 1_700_000_000)
        .bool(6, true)
        .string(7, "permission denied")
        .string(8, "/target")
        .string(9, "log")
        .varint(10, 1000)
        .varint(11, 50)
        .message(
            12,
            Fields::new()
                .string(1, "security.selinux")
                .bytes(2, b"system_u"),
        )
        .build();

    let info: machine::FileInfo = decode_exact(&bytes);
    assert_eq!(info.metadata.expect("metadata").hostname, "n1");
    assert_eq!(info.name, "/var/log");
    assert_eq!(info.size, 4096);
    assert_eq!(info.mode, (1u32 << 31) | 0o755);
    assert_eq!(info.modified, 1_700_000_000);
    assert!(info.is_dir);
    assert_eq!(info.error, "permission denied");
    assert_eq!(info.link, "/target");
    assert_eq!(info.relative_name, "log");
    assert_eq!((info.uid, info.gid), (1000, 50));
    assert_eq!(info.xattrs[0].name, "security.selinux");
    assert_eq!(info.xattrs[0].data, b"system_u");
}

#[test]
fn list_and_disk_usage_requests() {
    use machine::list_request::Type;

    let request: machine::ListRequest = decode_exact(
        &Fields::new()
            .string(1, "/var")
            .bool(2, true)
            .int(3, 2)
            .packed(4, &[1, 2])
            .bool(5, true)
            .build(),
    );
    assert_eq!(request.root, "/var");
    assert!(request.recurse && request.report_xattrs);
    assert_eq!(request.recursion_depth, 2);
    assert_eq!(
        request.types().collect::<Vec<_>>(),
        [Type::Directory, Type::Symlink]
    );

    let request: machine::DiskUsageRequest = decode_exact(
        &Fields::new()
            .int(1, 3)
            .bool(2, true)
            .int(3, -1024)
            .string(4, "/var")
            .string(4, "/opt")
            .build(),
    );
    assert_eq!(request.recursion_depth, 3);
    assert!(request.all);
    assert_eq!(request.threshold, -1024);
    assert_eq!(request.paths, ["/var", "/opt"]);

    let info: machine::DiskUsageInfo = decode_exact(
        &Fields::new()
            .message(1, metadata_fields_for("n1"))
            .string(2, "/var/lib")
            .int(3, 1 << 40)
            .string(4, "eacces")
            .string(5, "lib")
            .build(),
    );
    assert_eq!(info.name, "/var/lib");
    assert_eq!(info.size, 1 << 40);
    assert_eq!(info.error, "eacces");
    assert_eq!(info.relative_name, "lib");
}

#[test]
fn mem_info_every_field_number() {
    // Field n carries the value 1000 + n.
    let mut fields = Fields::new();
    for number in 1..=48u32 {
        fields = fields.varint(number, 1000 + u64::from(number));
    }
    let bytes = Fields::new()
        .message(1, Fields::new().message(2, fields))
        .build();

    let response: machine::MemoryResponse = decode_exact(&bytes);
    let m = response.messages[0].meminfo.expect("meminfo");
    let by_number = [
        m.memtotal,
        m.memfree,
        m.memavailable,
        m.buffers,
        m.cached,
        m.swapcached,
        m.active,
        m.inactive,
        m.activeanon,
        m.inactiveanon,
        m.activefile,
        m.inactivefile,
        m.unevictable,
        m.mlocked,
        m.swaptotal,
        m.swapfree,
        m.dirty,
        m.writeback,
        m.anonpages,
        m.mapped,
        m.shmem,
        m.slab,
        m.sreclaimable,
        m.sunreclaim,
        m.kernelstack,
        m.pagetables,
        m.nfsunstable,
        m.bounce,
        m.writebacktmp,
        m.commitlimit,
        m.committedas,
        m.vmalloctotal,
        m.vmallocused,
        m.vmallocchunk,
        m.hardwarecorrupted,
        m.anonhugepages,
        m.shmemhugepages,
        m.shmempmdmapped,
        m.cmatotal,
        m.cmafree,
        m.hugepagestotal,
        m.hugepagesfree,
        m.hugepagesrsvd,
        m.hugepagessurp,
        m.hugepagesize,
        m.directmap4k,
        m.directmap2m,
        m.directmap1g,
    ];
    let expected: Vec<u64> = (1..=48).map(|n| 1000 + n).collect();
    assert_eq!(by_number.as_slice(), expected.as_slice());
    assert_eq!(m.hugepagesize, 1045);
    assert_eq!(m.directmap1g, 1048);
}

#[test]
fn process_info_with_double_cpu_time() {
    let process = Fields::new()
        .int(1, 42)
        .int(2, 1)
        .string(3, "S")
        .int(4, 12)
        .double(5, 12.75)
        .varint(6, 1 << 33)
        .varint(7, 64 << 20)
        .string(8, "machined")
        .string(9, "/sbin/init")
        .string(10, "/sbin/init --dev")
        .string(11, "system_u:system_r:init_t:s0");
    let bytes = Fields::new()
        .message(1, Fields::new().message(2, process))
        .build();

    let response: machine::ProcessesResponse = decode_exact(&bytes);
    let p = &response.messages[0].processes[0];
    assert_eq!((p.pid, p.ppid, p.threads), (42, 1, 12));
    assert_eq!(p.state, "S");
    assert_eq!(p.cpu_time, 12.75);
    assert_eq!(p.virtual_memory, 1 << 33);
    assert_eq!(p.resident_memory, 64 << 20);
    assert_eq!(p.command, "machined");
    assert_eq!(p.executable, "/sbin/init");
    assert_eq!(p.args, "/sbin/init --dev");
    assert_eq!(p.label, "system_u:system_r:init_t:s0");
}

#[test]
fn netstat_request_nested_messages() {
    use machine::netstat_request::Filter;

    let bytes = Fields::new()
        .int(1, 2)
        .message(2, Fields::new().bool(1, true))
        .message(
            3,
            Fields::new()
                .bool(1, true)
                .bool(4, true)
                .bool(6, true)
                .bool(8, true),
        )
        .message(
            4,
            Fields::new().bool(1, true).string(2, "cni-1").bool(3, true),
        )
        .build();

    let request: machine::NetstatRequest = decode_exact(&bytes);
    assert_eq!(request.filter(), Filter::Listening);
    assert!(request.feature.expect("feature").pid);
    let l4 = request.l4proto.expect("l4proto");
    assert_eq!(
        [
            l4.tcp,
            l4.tcp6,
            l4.udp,
            l4.udp6,
            l4.udplite,
            l4.udplite6,
            l4.raw,
            l4.raw6
        ],
        [true, false, false, true, false, true, false, true]
    );
    let netns = request.netns.expect("netns");
    assert!(netns.hostnetwork && netns.allnetns);
    assert_eq!(netns.netns, ["cni-1"]);
}

#[test]
fn netstat_response_connect_record_all_fields() {
    use machine::connect_record::{State, TimerActive};

    let record = Fields::new()
        .string(1, "tcp")
        .string(2, "0.0.0.0")
        .varint(3, 50000)
        .string(4, "10.5.0.3")
        .varint(5, 43210)
        .int(6, 10)
        .varint(7, 7)
        .varint(8, 8)
        .int(9, 2)
        .varint(10, 10)
        .varint(11, 11)
        .varint(12, 50)
        .varint(13, 13)
        .varint(14, 123_456)
        .varint(15, 15)
        .varint(16, 0xffff_8880_0000_0000)
        .message(17, Fields::new().varint(1, 4242).string(2, "apid"))
        .string(18, "host");
    let bytes = Fields::new()
        .message(1, Fields::new().message(2, record))
        .build();

    let response: machine::NetstatResponse = decode_exact(&bytes);
    let r = &response.messages[0].connectrecord[0];
    assert_eq!(r.l4proto, "tcp");
    assert_eq!((r.localip.as_str(), r.localport), ("0.0.0.0", 50000));
    assert_eq!((r.remoteip.as_str(), r.remoteport), ("10.5.0.3", 43210));
    assert_eq!(r.state(), State::Listen);
    assert_eq!((r.txqueue, r.rxqueue), (7, 8));
    assert_eq!(r.tr(), TimerActive::Keepalive);
    assert_eq!(
        (r.timerwhen, r.retrnsmt, r.uid, r.timeout),
        (10, 11, 50, 13)
    );
    assert_eq!(
        (r.inode, r.r#ref, r.pointer),
        (123_456, 15, 0xffff_8880_0000_0000)
    );
    let process = r.process.as_ref().expect("process");
    assert_eq!((process.pid, process.name.as_str()), (4242, "apid"));
    assert_eq!(r.netns, "host");
    assert_eq!(State::Closing as i32, 11);
    assert_eq!(TimerActive::Probe as i32, 4);
}

#[test]
fn etcd_member_status_and_members() {
    let status = Fields::new()
        .string(1, "3.5.0")
        .int(2, 1 << 30)
        .int(3, 1 << 29)
        .varint(4, 0xdead_beef)
        .varint(5, 500)
        .varint(6, 7)
        .varint(7, 499)
        .string(8, "alarm: NOSPACE")
        .bool(9, true)
        .varint(10, 0xfeed_f00d)
        .string(11, "3.5.0");
    let bytes = Fields::new()
        .message(1, Fields::new().message(2, status))
        .build();

    let response: machine::EtcdStatusResponse = decode_exact(&bytes);
    let s = response.messages[0]
        .member_status
        .as_ref()
        .expect("member_status");
    assert_eq!(s.protocol_version, "3.5.0");
    assert_eq!((s.db_size, s.db_size_in_use), (1 << 30, 1 << 29));
    assert_eq!(s.leader, 0xdead_beef);
    assert_eq!(
        (s.raft_index, s.raft_term, s.raft_applied_index),
        (500, 7, 499)
    );
    assert_eq!(s.errors, ["alarm: NOSPACE"]);
    assert!(s.is_learner);
    assert_eq!(s.member_id, 0xfeed_f00d);
    assert_eq!(s.storage_version, "3.5.0");

    let member = Fields::new()
        .varint(2, 42)
        .string(3, "cp-1")
        .string(4, "https://10.5.0.2:2380")
        .string(5, "https://10.5.0.2:2379")
        .bool(6, true);
    let bytes = Fields::new()
        .message(1, Fields::new().string(2, "cp-1").message(3, member))
        .build();
    let response: machine::EtcdMemberListResponse = decode_exact(&bytes);
    let members = &response.messages[0];
    assert_eq!(members.legacy_members, ["cp-1"]);
    let m = &members.members[0];
    assert_eq!((m.id, m.hostname.as_str()), (42, "cp-1"));
    assert_eq!(m.peer_urls, ["https://10.5.0.2:2380"]);
    assert_eq!(m.client_urls, ["https://10.5.0.2:2379"]);
    assert!(m.is_learner);

    let bytes = Fields::new()
        .message(
            1,
            Fields::new().message(2, Fields::new().varint(1, 9).int(2, 1)),
        )
        .build();
    let alarms: machine::EtcdAlarmListResponse = decode_exact(&bytes);
    let alarm = &alarms.messages[0].member_alarms[0];
    assert_eq!(alarm.member_id, 9);
    assert_eq!(
        alarm.alarm(),
        machine::etcd_member_alarm::AlarmType::Nospace
    );
}

#[test]
fn generate_client_configuration() {
    let request: machine::GenerateClientConfigurationRequest = decode_exact(
        &Fields::new()
            .string(1, "os:reader")
            .string(1, "os:etcd:backup")
            .message(2, seconds_nanos(86_400, 0))
            .build(),
    );
    assert_eq!(request.roles, ["os:reader", "os:etcd:backup"]);
    assert_eq!(request.crt_ttl.expect("crt_ttl").seconds, 86_400);

    let bytes = Fields::new()
        .message(
            1,
            Fields::new()
                .bytes(2, b"CA PEM")
                .bytes(3, b"CRT PEM")
                .bytes(4, b"KEY PEM")
                .bytes(5, b"context: reader@demo"),
        )
        .build();
    let response: machine::GenerateClientConfigurationResponse = decode_exact(&bytes);
    let generated = &response.messages[0];
    assert_eq!(generated.ca, b"CA PEM");
    assert_eq!(generated.crt, b"CRT PEM");
    assert_eq!(generated.key, b"KEY PEM");
    assert_eq!(generated.talosconfig, b"context: reader@demo");
}

#[test]
fn reboot_reset_upgrade_requests() {
    let reboot: machine::RebootRequest = decode_exact(&Fields::new().int(1, 1).build());
    assert_eq!(reboot.mode(), machine::reboot_request::Mode::Powercycle);

    let reset: machine::ResetRequest = decode_exact(
        &Fields::new()
            .bool(1, true)
            .bool(2, true)
            .message(3, Fields::new().string(1, "EPHEMERAL").bool(2, true))
            .string(4, "/dev/sdb")
            .int(5, 2)
            .build(),
    );
    assert!(reset.graceful && reset.reboot);
    assert_eq!(reset.system_partitions_to_wipe[0].label, "EPHEMERAL");
    assert!(reset.system_partitions_to_wipe[0].wipe);
    assert_eq!(reset.user_disks_to_wipe, ["/dev/sdb"]);
    assert_eq!(reset.mode(), machine::reset_request::WipeMode::UserDisks);

    let upgrade: machine::UpgradeRequest = decode_exact(
        &Fields::new()
            .string(1, "ghcr.io/siderolabs/installer:v1.14.0")
            .bool(2, true)
            .bool(3, true)
            .bool(4, true)
            .int(5, 1)
            .build(),
    );
    assert_eq!(upgrade.image, "ghcr.io/siderolabs/installer:v1.14.0");
    assert!(upgrade.preserve && upgrade.stage && upgrade.force);
    assert_eq!(
        upgrade.reboot_mode(),
        machine::upgrade_request::RebootMode::Powercycle
    );

    let response: machine::UpgradeResponse = decode_exact(
        &Fields::new()
            .message(
                1,
                Fields::new()
                    .string(2, "Upgrade request received")
                    .string(3, "actor-1"),
            )
            .build(),
    );
    assert_eq!(response.messages[0].ack, "Upgrade request received");
    assert_eq!(response.messages[0].actor_id, "actor-1");
}

#[test]
fn container_stat_skips_field_three() {
    let stat = Fields::new()
        .string(1, "k8s.io")
        .string(2, "abc")
        .varint(4, 1 << 20)
        .varint(5, 777)
        .string(6, "pod-1")
        .string(7, "coredns");
    let bytes = Fields::new()
        .message(1, Fields::new().message(2, stat))
        .build();
    let response: machine::StatsResponse = decode_exact(&bytes);
    let s = &response.messages[0].stats[0];
    assert_eq!((s.namespace.as_str(), s.id.as_str()), ("k8s.io", "abc"));
    assert_eq!((s.memory_usage, s.cpu_usage), (1 << 20, 777));
    assert_eq!((s.pod_id.as_str(), s.name.as_str()), ("pod-1", "coredns"));
}

#[test]
fn security_certificate_request_and_response() {
    let request: securityapi::CertificateRequest =
        decode_exact(&Fields::new().bytes(1, b"CSR PEM").build());
    assert_eq!(request.csr, b"CSR PEM");

    let response: securityapi::CertificateResponse = decode_exact(
        &Fields::new()
            .bytes(1, b"CA BUNDLE")
            .bytes(2, b"SIGNED CRT")
            .build(),
    );
    assert_eq!(response.ca, b"CA BUNDLE");
    assert_eq!(response.crt, b"SIGNED CRT");
}

#[test]
fn time_response() {
    let bytes = Fields::new()
        .message(
            1,
            Fields::new()
                .message(1, metadata_fields_for("n1"))
                .string(2, "time.cloudflare.com")
                .message(3, seconds_nanos(1_700_000_000, 1))
                .message(4, seconds_nanos(1_700_000_001, 2)),
        )
        .build();
    let response: talos_time::TimeResponse = decode_exact(&bytes);
    let t = &response.messages[0];
    assert_eq!(t.server, "time.cloudflare.com");
    let local = t.localtime.as_ref().expect("localtime");
    let remote = t.remotetime.as_ref().expect("remotetime");
    assert_eq!((local.seconds, local.nanos), (1_700_000_000, 1));
    assert_eq!((remote.seconds, remote.nanos), (1_700_000_001, 2));

    let request: talos_time::TimeRequest =
        decode_exact(&Fields::new().string(1, "pool.ntp.org").build());
    assert_eq!(request.server, "pool.ntp.org");
}

fn cosi_resource_fields() -> Fields {
    let metadata = Fields::new()
        .string(1, "config")
        .string(2, "MachineConfigs.config.talos.dev")
        .string(3, "v1alpha1")
        .string(4, "3")
        .string(5, "owner-ctrl")
        .string(6, "running")
        .message(7, seconds_nanos(1_700_000_000, 0))
        .message(8, seconds_nanos(1_700_000_100, 0))
        .string(9, "finalizer-a")
        .message(10, Fields::new().string(1, "role").string(2, "cp"))
        .message(11, Fields::new().string(1, "note").string(2, "x"));
    let spec = Fields::new()
        .bytes(1, b"\x0a\x02hi")
        .string(2, "hostname: talos-1\n");
    Fields::new().message(1, metadata).message(2, spec)
}

#[test]
fn cosi_resource_metadata_and_spec() {
    let bytes = Fields::new().message(1, cosi_resource_fields()).build();
    let response: cosi::GetResponse = decode_exact(&bytes);
    let resource = response.resource.expect("resource");
    let m = resource.metadata.expect("metadata");
    assert_eq!(m.namespace, "config");
    assert_eq!(m.r#type, "MachineConfigs.config.talos.dev");
    assert_eq!(m.id, "v1alpha1");
    assert_eq!(m.version, "3");
    assert_eq!(m.owner, "owner-ctrl");
    assert_eq!(m.phase, "running");
    assert_eq!(m.created.expect("created").seconds, 1_700_000_000);
    assert_eq!(m.updated.expect("updated").seconds, 1_700_000_100);
    assert_eq!(m.finalizers, ["finalizer-a"]);
    assert_eq!(m.labels.get("role").map(String::as_str), Some("cp"));
    assert_eq!(m.annotations.get("note").map(String::as_str), Some("x"));
    let spec = resource.spec.expect("spec");
    assert_eq!(spec.proto_spec, b"\x0a\x02hi");
    assert_eq!(spec.yaml_spec, "hostname: talos-1\n");
}

#[test]
fn cosi_watch_request_optional_id_and_options() {
    let base = Fields::new()
        .string(1, "network")
        .string(2, "NodeAddresses.net.talos.dev");
    let options = Fields::new()
        .bool(1, true)
        .int(2, 5)
        .message(
            3,
            Fields::new().message(
                1,
                Fields::new()
                    .string(1, "role")
                    .int(2, 3)
                    .string(3, "cp")
                    .bool(5, true),
            ),
        )
        .message(4, Fields::new().string(1, "^eth"))
        .bool(5, true)
        .bytes(6, b"bm")
        .bool(7, true);

    // id absent: watch the whole kind.
    let without_id: cosi::WatchRequest = decode_exact(&base.clone().int(5, 1).build());
    assert_eq!(without_id.id, None);
    assert_eq!(without_id.api_version, 1);

    // id present even though it is the empty string: proto3 `optional` keeps presence.
    let with_empty_id: cosi::WatchRequest = decode_exact(&base.clone().string(3, "").build());
    assert_eq!(with_empty_id.id.as_deref(), Some(""));

    let full: cosi::WatchRequest = decode_exact(
        &base
            .string(3, "default")
            .message(4, options)
            .int(5, 1)
            .build(),
    );
    assert_eq!(full.namespace, "network");
    assert_eq!(full.r#type, "NodeAddresses.net.talos.dev");
    assert_eq!(full.id.as_deref(), Some("default"));
    let o = full.options.expect("options");
    assert!(o.bootstrap_contents && o.aggregated && o.bootstrap_bookmark);
    assert_eq!(o.tail_events, 5);
    let term = &o.label_query[0].terms[0];
    assert_eq!(term.key, "role");
    assert_eq!(term.op(), cosi::label_term::Operation::In);
    assert_eq!(term.value, ["cp"]);
    assert!(term.invert);
    assert_eq!(o.id_query.expect("id_query").regexp, "^eth");
    assert_eq!(o.start_from_bookmark.as_deref(), Some(&b"bm"[..]));
}

#[test]
fn cosi_watch_response_events() {
    let bytes = Fields::new()
        .message(
            1,
            Fields::new()
                .message(1, cosi_resource_fields())
                .int(2, 1)
                .message(3, cosi_resource_fields())
                .bytes(5, b"bookmark-1"),
        )
        .message(1, Fields::new().int(2, 4).string(4, "watch failed"))
        .build();
    let response: cosi::WatchResponse = decode_exact(&bytes);
    let [updated, errored] = response.event.as_slice() else {
        panic!("expected two events, got {:?}", response.event);
    };
    assert_eq!(updated.event_type(), cosi::EventType::Updated);
    assert!(updated.resource.is_some() && updated.old.is_some());
    assert_eq!(updated.error, None);
    assert_eq!(updated.bookmark.as_deref(), Some(&b"bookmark-1"[..]));
    assert_eq!(errored.event_type(), cosi::EventType::Errored);
    assert_eq!(errored.error.as_deref(), Some("watch failed"));
    assert_eq!(cosi::EventType::Noop as i32, 5);
}

#[test]
fn cosi_list_request_and_meta_specs() {
    let request: cosi::ListRequest = decode_exact(
        &Fields::new()
            .string(1, "meta")
            .string(2, "ResourceDefinitions.meta.cosi.dev")
            .message(
                3,
                Fields::new()
                    .message(1, Fields::new().message(1, Fields::new().string(1, "k")))
                    .message(2, Fields::new().string(1, ".*")),
            )
            .build(),
    );
    assert_eq!(request.namespace, "meta");
    let options = request.options.expect("options");
    assert_eq!(options.label_query[0].terms[0].key, "k");
    assert_eq!(options.id_query.expect("id_query").regexp, ".*");

    let spec: cosi::meta::ResourceDefinitionSpec = decode_exact(
        &Fields::new()
            .string(1, "Members.cluster.talos.dev")
            .string(2, "Member")
            .string(3, "cluster")
            .string(4, "members")
            .string(5, "member")
            .message(
                6,
                Fields::new().string(1, "Hostname").string(2, "{.hostname}"),
            )
            .int(7, 1)
            .build(),
    );
    assert_eq!(spec.resource_type, "Members.cluster.talos.dev");
    assert_eq!(spec.display_type, "Member");
    assert_eq!(spec.default_namespace, "cluster");
    assert_eq!(spec.aliases, ["members"]);
    assert_eq!(spec.all_aliases, ["member"]);
    assert_eq!(spec.print_columns[0].name, "Hostname");
    assert_eq!(spec.print_columns[0].json_path, "{.hostname}");
    assert_eq!(
        spec.sensitivity(),
        cosi::meta::resource_definition_spec::Sensitivity::Sensitive
    );

    let namespace: cosi::meta::NamespaceSpec =
        decode_exact(&Fields::new().string(1, "Talos config").build());
    assert_eq!(namespace.description, "Talos config");
}

#[test]
fn cluster_health_check() {
    let request: cluster::HealthCheckRequest = decode_exact(
        &Fields::new()
            .message(1, seconds_nanos(600, 0))
            .message(
                2,
                Fields::new()
                    .string(1, "10.5.0.2")
                    .string(2, "10.5.0.3")
                    .string(3, "https://10.5.0.2:6443"),
            )
            .build(),
    );
    assert_eq!(request.wait_timeout.expect("wait_timeout").seconds, 600);
    let info = request.cluster_info.expect("cluster_info");
    assert_eq!(info.control_plane_nodes, ["10.5.0.2"]);
    assert_eq!(info.worker_nodes, ["10.5.0.3"]);
    assert_eq!(info.force_endpoint, "https://10.5.0.2:6443");

    let progress: cluster::HealthCheckProgress = decode_exact(
        &Fields::new()
            .message(1, metadata_fields_for("n1"))
            .string(2, "waiting for etcd to be healthy: OK")
            .build(),
    );
    assert_eq!(progress.metadata.expect("metadata").hostname, "n1");
    assert_eq!(progress.message, "waiting for etcd to be healthy: OK");
}

#[test]
fn storage_disks_and_wipe() {
    let disk = Fields::new()
        .varint(1, 10 << 30)
        .string(2, "QEMU HARDDISK")
        .string(3, "/dev/sda")
        .string(4, "sda")
        .string(5, "QM00001")
        .string(6, "scsi:t-0x00")
        .string(7, "uuid-1")
        .string(8, "wwid-1")
        .int(9, 2)
        .string(10, "/pci0000:00/0000:00:05.0")
        .bool(11, true)
        .string(12, "/sys/class/block")
        .bool(13, true);
    let response: storage::DisksResponse = decode_exact(
        &Fields::new()
            .message(1, Fields::new().message(2, disk))
            .build(),
    );
    let d = &response.messages[0].disks[0];
    assert_eq!(d.size, 10 << 30);
    assert_eq!(d.model, "QEMU HARDDISK");
    assert_eq!(
        (d.device_name.as_str(), d.name.as_str()),
        ("/dev/sda", "sda")
    );
    assert_eq!(
        (d.serial.as_str(), d.modalias.as_str()),
        ("QM00001", "scsi:t-0x00")
    );
    assert_eq!((d.uuid.as_str(), d.wwid.as_str()), ("uuid-1", "wwid-1"));
    assert_eq!(d.r#type(), storage::disk::DiskType::Hdd);
    assert_eq!(d.bus_path, "/pci0000:00/0000:00:05.0");
    assert!(d.system_disk && d.readonly);
    assert_eq!(d.subsystem, "/sys/class/block");

    let request: storage::BlockDeviceWipeRequest = decode_exact(
        &Fields::new()
            .message(
                1,
                Fields::new()
                    .string(1, "/dev/sdb")
                    .int(2, 1)
                    .bool(3, true)
                    .bool(4, true)
                    .bool(5, true),
            )
            .build(),
    );
    let wipe = &request.devices[0];
    assert_eq!(wipe.device, "/dev/sdb");
    assert_eq!(
        wipe.method(),
        storage::block_device_wipe_descriptor::Method::Zeroes
    );
    assert!(wipe.skip_volume_check && wipe.drop_partition && wipe.skip_secondary_check);
}

#[test]
fn inspect_controller_dependencies() {
    let edge = Fields::new()
        .string(1, "network.AddressSpecController")
        .int(2, 4)
        .string(3, "network")
        .string(4, "AddressSpecs.net.talos.dev")
        .string(5, "eth0/10.5.0.2/24");
    let response: inspect::ControllerRuntimeDependenciesResponse = decode_exact(
        &Fields::new()
            .message(1, Fields::new().message(2, edge))
            .build(),
    );
    let e = &response.messages[0].edges[0];
    assert_eq!(e.controller_name, "network.AddressSpecController");
    assert_eq!(
        e.edge_type(),
        inspect::DependencyEdgeType::InputDestroyReady
    );
    assert_eq!(e.resource_namespace, "network");
    assert_eq!(e.resource_type, "AddressSpecs.net.talos.dev");
    assert_eq!(e.resource_id, "eth0/10.5.0.2/24");
}
