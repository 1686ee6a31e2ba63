//! Cloud platforms' own artifacts (`cargo xtask image --platform NAME`) booted in QEMU (TCG),
//! each disk as QEMU reads that format: the raw disk of aws (zstd) and openstack, gcp's
//! `disk.raw` out of its tar.gz, azure's fixed VHD (`vpc`), vmware's streamOptimized VMDK
//! out of its OVA, qcow2 where the artifact is one. `qemu-img info` confirms each format and
//! its virtual size first; the VM writes to a qcow2 overlay over the artifact's disk.
//!
//! The provider's metadata service is a server of the test's own ([`tests::MetadataServer`]
//! on 127.0.91.1) reached through QEMU's user networking: the VM's network is link-local
//! (169.254.0.0/16, the guest 169.254.0.15 by DHCP) and a guestfwd of 169.254.169.254:80 runs
//! a relay to the server for each connection. Azure's wire server (168.63.129.16) lies
//! outside that range, and libslirp forwards only addresses inside its network: the azure VM's
//! network is 168.0.0.0/7, which holds both. After boot the node is configured from the user
//! data (mutual TLS answers, maintenance mode does not), and `talosctl get platformmetadata`
//! and `get hostname` show what the metadata said.
//!
//! nocloud and opennebula read a local volume instead, which the test makes as an iso9660
//! image (FAT for nocloud in `test-platforms`) and attaches as a second virtio disk: nocloud's `cidata` (`user-data`, `meta-data`
//! with the instance id and hostname, and a `network-config` v2 that names the NIC by its MAC
//! address) and OpenNebula's `CONTEXT` (`context.sh`: ETH0's address, gateway, resolver and an
//! alias, the host name, `VMID`, the user data in base64). Besides the metadata, their node
//! must have the extra address that network config gives (`get addresses`).
//!
//! vmware's guestinfo comes over VMware's backdoor I/O port (an RPC QEMU's `vmport` does not
//! answer), so its boot ends in maintenance mode on platform vmware.
//!
//! `cargo xtask test-platforms` boots every platform's artifact (the ignored test below) and
//! prints the figures; the artifacts come from `cargo xtask image --platform …`.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use qemu::{Boot, Extras, HostService, UserNet, Vm, VmConfig};
use tests::{MetadataServer, Reply, Request, binary, image_dir, one_vm, run_bounded, success};

const API_READY: &str = "machined: apid answering on";
/// machined's line when a platform's user data became the config.
const USER_DATA_TAKEN: &str = ": config taken from the user data";
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);
/// The test's loopback block (127.0.91.0/24).
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 91, 1);
/// Where most providers serve their metadata.
const METADATA_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// Scaleway's metadata service.
const SCALEWAY_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 42, 42);
/// Alibaba Cloud's metadata service.
const ALIBABA_IP: Ipv4Addr = Ipv4Addr::new(100, 100, 100, 200);
/// Azure's wire server.
const WIRE_SERVER_IP: Ipv4Addr = Ipv4Addr::new(168, 63, 129, 16);
/// The VMs' network: link-local, as a cloud instance sees its metadata service.
const LINK_LOCAL: UserNet = UserNet {
    address: Ipv4Addr::new(169, 254, 0, 0),
    prefix: 16,
};
/// Azure's: wide enough for the wire server and the metadata address.
const AZURE_NET: UserNet = UserNet {
    address: Ipv4Addr::new(168, 0, 0, 0),
    prefix: 7,
};
/// Alibaba Cloud's: the shared address space (RFC 6598) that holds its metadata service.
const ALIBABA_NET: UserNet = UserNet {
    address: Ipv4Addr::new(100, 64, 0, 0),
    prefix: 10,
};
/// The platform artifacts' virtual size (`xtask/src/image/disk.rs`).
const DISK_SIZE: u64 = 4 << 30;

/// What a mock says about the instance; `get platformmetadata` must show each.
struct Instance {
    hostname: &'static str,
    instance_id: &'static str,
    instance_type: &'static str,
    region: &'static str,
    zone: &'static str,
}

/// A platform's artifact unpacked to the disk QEMU reads, and that format.
struct Disk {
    path: PathBuf,
    format: &'static str,
}

/// The artifact of `platform` in `image` (`NAME-amd64.*`).
fn artifact(image: &Path, platform: &str) -> PathBuf {
    let prefix = format!("{platform}-amd64.");
    let found = std::fs::read_dir(image)
        .unwrap()
        .flatten()
        .find_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let packed = [
                ".raw.zst",
                ".raw.gz",
                ".raw.tar.gz",
                ".qcow2.zst",
                ".vhd.zst",
                ".ova",
            ];
            (name.starts_with(&prefix) && packed.iter().any(|end| name.ends_with(end)))
                .then(|| entry.path())
        });
    found.unwrap_or_else(|| {
        panic!(
            "no artifact of {platform} in {}: run `cargo xtask image --platform {platform} --prebuilt` first",
            image.display()
        )
    })
}

/// Unpacks `artifact` into `work` with the tools the image build packed it with.
fn unpack(artifact: &Path, work: &Path) -> Disk {
    let name = artifact.file_name().unwrap().to_string_lossy().into_owned();
    let zstd = |to: &str| {
        let path = work.join(to);
        success(
            Command::new("zstd")
                .args(["-q", "-d", "-f"])
                .arg(artifact)
                .arg("-o")
                .arg(&path)
                .output()
                .unwrap(),
        );
        path
    };
    let untar = |member: &str, flags: &str| {
        success(
            Command::new("tar")
                .arg(flags)
                .arg(artifact)
                .arg("-C")
                .arg(work)
                .arg(member)
                .output()
                .unwrap(),
        );
        work.join(member)
    };
    let (path, format) = if name.ends_with(".raw.zst") {
        (zstd("disk.raw"), "raw")
    } else if name.ends_with(".qcow2.zst") {
        (zstd("disk.qcow2"), "qcow2")
    } else if name.ends_with(".vhd.zst") {
        (zstd("disk.vhd"), "vpc")
    } else if name.ends_with(".raw.tar.gz") {
        (untar("disk.raw", "-xzf"), "raw")
    } else if name.ends_with(".ova") {
        (untar("disk.vmdk", "-xf"), "vmdk")
    } else if name.ends_with(".raw.gz") {
        let path = work.join("disk.raw");
        let file = std::fs::File::create(&path).unwrap();
        let status = Command::new("gzip")
            .args(["-d", "-c"])
            .arg(artifact)
            .stdout(file)
            .status()
            .unwrap();
        assert!(status.success(), "gzip -d {name}: {status}");
        (path, "raw")
    } else {
        panic!("{name}: not a packing this test knows");
    };
    Disk { path, format }
}

/// Checks the format and virtual size `qemu-img info` reads, then makes a qcow2 overlay over
/// the disk (the artifact stays as built).
fn overlay(disk: &Disk, work: &Path) -> PathBuf {
    let info = success(
        Command::new("qemu-img")
            .args(["info", "--output=json", "-f", disk.format])
            .arg(&disk.path)
            .output()
            .unwrap(),
    );
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["format"], disk.format, "{info}");
    if disk.format == "vmdk" {
        assert_eq!(
            info["format-specific"]["data"]["create-type"], "streamOptimized",
            "{info}"
        );
    }
    let size = info["virtual-size"].as_u64().unwrap();
    // A VHD's size is the CHS geometry's, at least the disk's.
    assert!(
        (DISK_SIZE..DISK_SIZE + (64 << 20)).contains(&size),
        "virtual size {size}: {info}"
    );
    let overlay = work.join("overlay.qcow2");
    success(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", disk.format, "-b"])
            .arg(&disk.path)
            .arg(&overlay)
            .output()
            .unwrap(),
    );
    overlay
}

/// The MAC address QEMU gives the VM's one NIC.
const GUEST_MAC: &str = "52:54:00:12:34:56";
/// An address a provider's network config adds beside the one DHCP gives: shown by
/// `get addresses` only when the node applied that network config.
const PROVIDER_ADDRESS: &str = "192.0.2.7/24";

/// How a data volume is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VolumeFormat {
    /// iso9660 (`xorriso`, as `genisoimage -volid` makes them).
    Iso,
    /// FAT (`mkfs.vfat -n`, the files copied in with mtools; no root needed).
    Fat,
}

/// The data volume of a platform that reads its user data from a local disk, made in `work`
/// in `format`: nocloud's `cidata` and OpenNebula's `CONTEXT`; `None` for the others.
fn data_volume(
    platform: &str,
    instance: &Instance,
    network: UserNet,
    config: &[u8],
    work: &Path,
    format: VolumeFormat,
) -> Option<PathBuf> {
    use base64::Engine as _;
    let guest = network.guest();
    let gateway = Ipv4Addr::from(u32::from(network.address) + 2);
    let dns = Ipv4Addr::from(u32::from(network.address) + 3);
    let prefix = network.prefix;
    let mask = Ipv4Addr::from(u32::MAX << (32 - u32::from(prefix)));
    let files: Vec<(&str, Vec<u8>)> = match platform {
        // nocloud's documented files; network-config v2 names the NIC by its MAC address.
        "nocloud" => vec![
            ("user-data", config.to_vec()),
            (
                "meta-data",
                format!(
                    "instance-id: {}\nlocal-hostname: {}\n",
                    instance.instance_id, instance.hostname
                )
                .into_bytes(),
            ),
            (
                "network-config",
                format!(
                    "version: 2\nethernets:\n  primary:\n    match:\n      macaddress: \"{GUEST_MAC}\"\n    \
                     addresses: [{guest}/{prefix}, {PROVIDER_ADDRESS}]\n    gateway4: {gateway}\n    \
                     nameservers:\n      addresses: [{dns}]\n"
                )
                .into_bytes(),
            ),
        ],
        // OpenNebula's context variables for the first NIC, the host name, the VM id and the
        // user data in base64.
        "opennebula" => vec![(
            "context.sh",
            format!(
                "# Context variables generated by OpenNebula\nDISK_ID='1'\nETH0_MAC='{GUEST_MAC}'\n\
                 ETH0_IP='{guest}'\nETH0_MASK='{mask}'\nETH0_GATEWAY='{gateway}'\n\
                 ETH0_DNS='{dns}'\nETH0_ALIAS0_MAC='{GUEST_MAC}'\nETH0_ALIAS0_IP='{}'\n\
                 ETH0_ALIAS0_MASK='255.255.255.0'\nSET_HOSTNAME='{}'\nVMID='{}'\n\
                 USERDATA_ENCODING='base64'\nUSER_DATA='{}'\n",
                PROVIDER_ADDRESS.split('/').next().unwrap(),
                instance.hostname,
                instance.instance_id,
                base64::engine::general_purpose::STANDARD.encode(config),
            )
            .into_bytes(),
        )],
        _ => return None,
    };
    let dir = work.join(format!("{platform}-volume"));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, body) in &files {
        std::fs::write(dir.join(name), body).unwrap();
    }
    let label = match platform {
        "nocloud" => "cidata",
        _ => "CONTEXT",
    };
    let volume = work.join(format!("{label}.img"));
    if format == VolumeFormat::Iso {
        success(
            Command::new("xorriso")
                .args(["-as", "mkisofs", "-quiet", "-r", "-J", "-V", label, "-o"])
                .arg(&volume)
                .arg(&dir)
                .output()
                .unwrap(),
        );
        return Some(volume);
    }
    success(
        Command::new("mkfs.vfat")
            .args(["-n", &label.to_ascii_uppercase(), "-C"])
            .arg(&volume)
            .arg("2048")
            .output()
            .unwrap(),
    );
    for (name, _) in &files {
        success(
            Command::new("mcopy")
                .env("MTOOLS_SKIP_CHECK", "1")
                .arg("-i")
                .arg(&volume)
                .arg(dir.join(name))
                .arg(format!("::{name}"))
                .output()
                .unwrap(),
        );
    }
    Some(volume)
}

/// How `platform`'s metadata service answers, serving `config` as the user data; `None`:
/// no mock here.
fn provider(
    platform: &str,
    instance: &'static Instance,
    config: Vec<u8>,
) -> Option<Box<tests::Answer>> {
    let not_found = || Reply::status(404);
    Some(match platform {
        "aws" => Box::new(move |r: &Request| aws(r, instance, &config).unwrap_or_else(not_found)),
        "gcp" => Box::new(move |r: &Request| gcp(r, instance, &config)),
        "azure" => {
            Box::new(move |r: &Request| azure(r, instance, &config).unwrap_or_else(not_found))
        }
        "openstack" => {
            Box::new(move |r: &Request| openstack(r, instance, &config).unwrap_or_else(not_found))
        }
        "oracle" => Box::new(move |r: &Request| oracle(r, instance, &config)),
        "alibabacloud" => Box::new(move |r: &Request| alibabacloud(r, instance, &config)),
        "akamai" => Box::new(move |r: &Request| akamai(r, instance, &config)),
        _ => {
            let (documents, user_data) = documents(platform, instance)?;
            Box::new(move |r: &Request| {
                if r.method != "GET" {
                    return Reply::status(405);
                }
                if r.target == user_data {
                    return Reply::ok(config.clone());
                }
                documents
                    .iter()
                    .find(|(target, _)| *target == r.target)
                    .map_or_else(not_found, |(_, body)| Reply::ok(body.clone()))
            })
        }
    })
}

/// The documents (target → body) and the user data's target of the providers whose service
/// is a few plain GETs.
fn documents(platform: &str, i: &Instance) -> Option<(Vec<(String, String)>, &'static str)> {
    use serde_json::json;
    let one = |target: &str, body: serde_json::Value| vec![(target.to_string(), body.to_string())];
    Some(match platform {
        "hcloud" => (
            vec![(
                "/hetzner/v1/metadata".into(),
                format!(
                    "instance-id: {}\nhostname: {}\nregion: {}\navailability-zone: {}\npublic-ipv4: 203.0.113.30\n",
                    i.instance_id, i.hostname, i.region, i.zone
                ),
            )],
            "/hetzner/v1/userdata",
        ),
        "digital-ocean" => (
            one(
                "/metadata/v1.json",
                json!({"droplet_id": i.instance_id.parse::<u64>().ok()?, "hostname": i.hostname, "region": i.region}),
            ),
            "/metadata/v1/user-data",
        ),
        "vultr" => (
            one(
                "/v1.json",
                json!({"hostname": i.hostname, "instance-v2-id": i.instance_id, "region": {"regioncode": i.region}, "interfaces": []}),
            ),
            "/latest/user-data",
        ),
        "upcloud" => (
            one(
                "/metadata/v1.json",
                json!({"hostname": i.hostname, "instance_id": i.instance_id, "region": i.region, "network": {"interfaces": [], "dns": []}, "tags": []}),
            ),
            "/metadata/v1/user_data",
        ),
        "scaleway" => (
            one(
                "/conf?format=json",
                json!({"id": i.instance_id, "hostname": i.hostname, "commercial_type": i.instance_type, "location": {"zone_id": i.zone}}),
            ),
            "/user_data/cloud-init",
        ),
        "exoscale" => (
            [
                ("local-hostname", i.hostname),
                ("instance-id", i.instance_id),
                ("service-offering", i.instance_type),
                ("availability-zone", i.zone),
            ]
            .iter()
            .map(|(key, value)| (format!("/1.0/meta-data/{key}"), value.to_string()))
            .collect(),
            "/1.0/user-data",
        ),
        _ => return None,
    })
}

const AWS_TOKEN: &str = "AQAEAtalos-rs-test-token==";

/// IMDSv2: a token for a PUT that asks for one; every GET must carry it.
fn aws(request: &Request, instance: &Instance, config: &[u8]) -> Option<Reply> {
    if request.method == "PUT" {
        return Some(
            match (
                request.target.as_str(),
                request.header("x-aws-ec2-metadata-token-ttl-seconds"),
            ) {
                ("/latest/api/token", Some(_)) => Reply::ok(AWS_TOKEN),
                _ => Reply::status(400),
            },
        );
    }
    if request.header("x-aws-ec2-metadata-token") != Some(AWS_TOKEN) {
        return Some(Reply::status(401));
    }
    let value = match request.target.strip_prefix("/latest/")? {
        "user-data" => return Some(Reply::ok(config)),
        "meta-data/hostname" | "meta-data/local-hostname" => instance.hostname,
        "meta-data/instance-id" => instance.instance_id,
        "meta-data/instance-type" => instance.instance_type,
        "meta-data/instance-life-cycle" => "on-demand",
        "meta-data/placement/region" => instance.region,
        "meta-data/placement/availability-zone" => instance.zone,
        "meta-data/public-ipv4" => "203.0.113.10",
        _ => return None,
    };
    Some(Reply::ok(value))
}

/// One recursive JSON document; only with `Metadata-Flavor: Google`, which the answer carries.
fn gcp(request: &Request, instance: &Instance, config: &[u8]) -> Reply {
    if request.header("metadata-flavor") != Some("Google") {
        return Reply::status(403);
    }
    if request.target != "/computeMetadata/v1/?recursive=true&alt=json" {
        return Reply::status(404);
    }
    let document = serde_json::json!({
        "instance": {
            "id": instance.instance_id.parse::<u64>().unwrap(),
            "name": instance.hostname.split('.').next().unwrap(),
            "hostname": instance.hostname,
            "zone": format!("projects/123456789012/zones/{}", instance.zone),
            "machineType": format!("projects/123456789012/machineTypes/{}", instance.instance_type),
            "attributes": { "user-data": String::from_utf8_lossy(config) },
            "networkInterfaces": [{ "accessConfigs": [{ "externalIp": "203.0.113.20" }] }],
        },
        "project": { "projectId": "talos-rs-test" },
    });
    let mut reply = Reply::ok(document.to_string());
    reply.headers.push(("Metadata-Flavor", "Google".into()));
    reply
}

/// IMDS (`Metadata: true`) and the wire server's goal state and health report.
fn azure(request: &Request, instance: &Instance, config: &[u8]) -> Option<Reply> {
    use base64::Engine as _;
    match request.line().as_str() {
        "GET /machine/?comp=goalstate" => return Some(Reply::ok(AZURE_GOAL_STATE)),
        "POST /machine/?comp=health" => return Some(Reply::ok("")),
        _ => {}
    }
    if request.header("metadata") != Some("true") {
        return Some(Reply::status(400));
    }
    let (path, query) = request.target.split_once('?')?;
    Some(match path {
        "/metadata/instance/compute" if query.contains("format=json") => {
            let zone = instance.zone.rsplit('-').next().unwrap();
            Reply::ok(
                serde_json::json!({
                    "name": instance.hostname,
                    "osProfile": { "computerName": instance.hostname },
                    "vmId": instance.instance_id,
                    "vmSize": instance.instance_type,
                    "location": instance.region,
                    "zone": zone,
                })
                .to_string(),
            )
        }
        "/metadata/instance/compute/userData" => {
            Reply::ok(base64::engine::general_purpose::STANDARD.encode(config))
        }
        _ => return None,
    })
}

const AZURE_GOAL_STATE: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<GoalState>\
    <Version>2015-04-05</Version><Incarnation>3</Incarnation>\
    <Container><ContainerId>7c1a0e2b-0000-4000-8000-000000000001</ContainerId>\
    <RoleInstanceList><RoleInstance><InstanceId>7c1a0e2b._azure-node-1</InstanceId>\
    <State>Started</State></RoleInstance></RoleInstanceList></Container></GoalState>";

/// OpenStack's metadata service (and its EC2-style instance type).
fn openstack(request: &Request, instance: &Instance, config: &[u8]) -> Option<Reply> {
    Some(match request.target.as_str() {
        "/openstack/latest/meta_data.json" => Reply::ok(
            serde_json::json!({
                "uuid": instance.instance_id,
                "hostname": instance.hostname,
                "availability_zone": instance.zone,
            })
            .to_string(),
        ),
        "/latest/meta-data/instance-type" => Reply::ok(instance.instance_type),
        "/openstack/latest/user_data" => Reply::ok(config),
        _ => return None,
    })
}

/// Oracle's IMDS v2: every request with `Authorization: Bearer Oracle`; the instance
/// document (its user data in base64 under `metadata`) and the VNICs.
fn oracle(request: &Request, instance: &Instance, config: &[u8]) -> Reply {
    use base64::Engine as _;
    if request.method != "GET" {
        return Reply::status(405);
    }
    if request.header("authorization") != Some("Bearer Oracle") {
        return Reply::status(401);
    }
    let document = match request.target.as_str() {
        "/opc/v2/instance/" => serde_json::json!({
            "availabilityDomain": instance.zone.to_ascii_uppercase(),
            "faultDomain": "FAULT-DOMAIN-2",
            "compartmentId": "ocid1.compartment.oc1..talosrstest",
            "displayName": instance.hostname,
            "hostname": instance.hostname,
            "id": instance.instance_id,
            "region": "fra",
            "canonicalRegionName": instance.region,
            "shape": instance.instance_type,
            "state": "Running",
            "metadata": {
                "ssh_authorized_keys": "",
                "user_data": base64::engine::general_purpose::STANDARD.encode(config),
            },
        }),
        "/opc/v2/vnics/" => serde_json::json!([{
            "vnicId": "ocid1.vnic.oc1.eu-frankfurt-1.talosrstest",
            "privateIp": "169.254.0.15",
            "vlanTag": 0,
            "macAddr": "52:54:00:12:34:56",
            "virtualRouterIp": "169.254.0.2",
            "subnetCidrBlock": "169.254.0.0/16",
            "nicIndex": 0,
        }]),
        _ => return Reply::status(404),
    };
    Reply::ok(document.to_string())
}

const ALIBABA_TOKEN: &str = "AAAAAtalos-rs-ecs-token";

/// ECS metadata in security hardening mode: a token for a PUT that asks for one; every GET
/// must carry it.
fn alibabacloud(request: &Request, instance: &Instance, config: &[u8]) -> Reply {
    if request.method == "PUT" {
        return match (
            request.target.as_str(),
            request.header("x-aliyun-ecs-metadata-token-ttl-seconds"),
        ) {
            ("/latest/api/token", Some(_)) => Reply::ok(ALIBABA_TOKEN),
            _ => Reply::status(400),
        };
    }
    if request.header("x-aliyun-ecs-metadata-token") != Some(ALIBABA_TOKEN) {
        return Reply::status(401);
    }
    let value = match request.target.as_str() {
        "/latest/user-data" => return Reply::ok(config),
        "/latest/meta-data/hostname" => instance.hostname,
        "/latest/meta-data/instance-id" => instance.instance_id,
        "/latest/meta-data/instance/instance-type" => instance.instance_type,
        "/latest/meta-data/region-id" => instance.region,
        "/latest/meta-data/zone-id" => instance.zone,
        "/latest/meta-data/eipv4" => "203.0.113.50",
        "/latest/meta-data/dns-conf/nameservers" => "100.100.2.136\n100.100.2.138",
        _ => return Reply::status(404),
    };
    Reply::ok(value)
}

const AKAMAI_TOKEN: &str = "talos-rs-linode-token";

/// Akamai's (Linode's) metadata service: a token for `PUT /v1/token`, every GET with it;
/// JSON only when asked for (`Accept: application/json`), the user data in base64.
fn akamai(request: &Request, instance: &Instance, config: &[u8]) -> Reply {
    use base64::Engine as _;
    if request.method == "PUT" {
        return match (
            request.target.as_str(),
            request.header("metadata-token-expiry-seconds"),
        ) {
            ("/v1/token", Some(_)) => Reply::ok(AKAMAI_TOKEN),
            _ => Reply::status(400),
        };
    }
    if request.header("metadata-token") != Some(AKAMAI_TOKEN) {
        return Reply::status(401);
    }
    let json = request.header("accept") == Some("application/json");
    let document = match request.target.as_str() {
        "/v1/user-data" => {
            return Reply::ok(base64::engine::general_purpose::STANDARD.encode(config));
        }
        "/v1/instance" => serde_json::json!({
            "id": instance.instance_id.parse::<u64>().unwrap(),
            "host_uuid": "3a6f8e2c9b1d4e7f",
            "label": instance.hostname,
            "region": instance.region,
            "type": instance.instance_type,
            "tags": [],
            "specs": {"vcpus": 2, "memory": 4096, "gpus": 0, "transfer": 4000, "disk": 81920},
            "backups": {"enabled": false, "status": null},
        }),
        "/v1/network" => serde_json::json!({
            "interfaces": [],
            "ipv4": {"public": ["203.0.113.40/32"], "private": [], "shared": []},
            "ipv6": {
                "slaac": "2001:db8::40/128",
                "ranges": [],
                "link_local": "fe80::5054:ff:fe12:3456/128",
                "shared_ranges": [],
            },
        }),
        _ => return Reply::status(404),
    };
    // The real service answers plain text without it; this mock only speaks JSON.
    if !json {
        return Reply::status(406);
    }
    Reply::ok(document.to_string())
}

/// The instance each mocked platform describes ("": a value `get platformmetadata` is not
/// checked for); `None` for a platform without a mock here.
fn instance(platform: &str) -> Option<&'static Instance> {
    let described = |hostname, instance_id, instance_type, region, zone| Instance {
        hostname,
        instance_id,
        instance_type,
        region,
        zone,
    };
    static INSTANCES: std::sync::OnceLock<Vec<(&str, Instance)>> = std::sync::OnceLock::new();
    let instances = INSTANCES.get_or_init(|| {
        vec![
            (
                "aws",
                described(
                    "aws-node-1.eu-west-3.compute.internal",
                    "i-0a1b2c3d4e5f67890",
                    "t3.small",
                    "eu-west-3",
                    "eu-west-3a",
                ),
            ),
            (
                "gcp",
                described(
                    "gcp-node-1.c.talos-rs-test.internal",
                    "4520031799277581759",
                    "e2-small",
                    "europe-west1",
                    "europe-west1-b",
                ),
            ),
            (
                "azure",
                described(
                    "azure-node-1",
                    "5c08b38e-4d57-4c23-ac45-aca61037f084",
                    "Standard_B2s",
                    "westeurope",
                    "westeurope-1",
                ),
            ),
            (
                "openstack",
                described(
                    "openstack-node-1.novalocal",
                    "83679162-1378-4288-a2d4-70e13ec132aa",
                    "m1.small",
                    "",
                    "nova",
                ),
            ),
            (
                "hcloud",
                described("hcloud-node-1", "42424242", "", "eu-central", "fsn1-dc14"),
            ),
            (
                "digital-ocean",
                described("do-node-1", "3164494", "", "ams3", ""),
            ),
            (
                "vultr",
                described(
                    "vultr-node-1",
                    "a7d0e2b4-9f3c-4d2e-8b1a-5c6d7e8f9a0b",
                    "",
                    "",
                    "",
                ),
            ),
            (
                "upcloud",
                described(
                    "upcloud-node-1",
                    "00e1a2b3-c4d5-4e6f-8a9b-0c1d2e3f4a5b",
                    "",
                    "fi-hel1",
                    "",
                ),
            ),
            (
                "scaleway",
                described(
                    "scw-node-1",
                    "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d",
                    "DEV1-S",
                    "",
                    "fr-par-1",
                ),
            ),
            (
                "exoscale",
                described(
                    "exo-node-1",
                    "4c1a6a3e-7f0a-4c77-9d1e-2b3c4d5e6f70",
                    "standard.small",
                    "",
                    "ch-gva-2",
                ),
            ),
            (
                "oracle",
                described(
                    "oci-node-1",
                    "ocid1.instance.oc1.eu-frankfurt-1.antheljt5example",
                    "VM.Standard.E4.Flex",
                    "eu-frankfurt-1",
                    "xyzw:eu-frankfurt-1-ad-1",
                ),
            ),
            (
                "akamai",
                described("linode-node-1", "61234567", "g6-standard-2", "nl-ams", ""),
            ),
            (
                "nocloud",
                described(
                    "nocloud-node-1.example.org",
                    "iid-nocloud-node-1",
                    "",
                    "",
                    "",
                ),
            ),
            ("opennebula", described("one-node-1", "42", "", "", "")),
            (
                "alibabacloud",
                described(
                    "izbp1talosrs0node1z",
                    "i-bp1talosrs0node1",
                    "ecs.g6.large",
                    "cn-hangzhou",
                    "cn-hangzhou-i",
                ),
            ),
        ]
    });
    instances
        .iter()
        .find(|(name, _)| *name == platform)
        .map(|(_, instance)| instance)
}

/// How a boot ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Configured from the mock's user data, mutual TLS answering.
    Configured,
    /// Maintenance mode (the platform gives no config here).
    Maintenance,
    /// The platform asks a metadata service this test does not mock: machined said it does
    /// not answer (the boot goes on to maintenance mode after its back-off, not waited for).
    Unanswered,
}

/// What a boot measured.
struct Run {
    outcome: Outcome,
    /// QEMU start → configured (mutual TLS answers) or maintenance mode answering.
    boot: Duration,
    /// The user data served → mutual TLS answering.
    api_after_config: Option<Duration>,
    vm: Vm,
    server: Option<MetadataServer>,
    talosctl: Talosctl,
}

struct Talosctl {
    talosconfig: PathBuf,
    port: u16,
    node: Ipv4Addr,
}

impl Talosctl {
    fn insecure(&self, args: &[&str]) -> Output {
        let node = format!("127.0.0.1:{}", self.port);
        run_bounded(
            Command::new(binary("talosctl"))
                .args(["--talosconfig", "/nonexistent", "-n", &node])
                .args(args)
                .arg("--insecure"),
            Duration::from_secs(20),
        )
    }

    fn secure(&self, args: &[&str]) -> Output {
        let endpoint = format!("127.0.0.1:{}", self.port);
        run_bounded(
            Command::new(binary("talosctl"))
                .arg("--talosconfig")
                .arg(&self.talosconfig)
                .args(["-e", &endpoint, "-n", &self.node.to_string()])
                .args(args),
            Duration::from_secs(20),
        )
    }
}

/// Polls `attempt` every 250 ms for up to `within`; the time it first succeeded.
fn until(within: Duration, mut attempt: impl FnMut() -> bool) -> Option<Instant> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if attempt() {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    None
}

/// Boots `platform`'s artifact (files in `work`) with its mock, to configured or maintenance;
/// a data volume is iso9660.
fn boot(platform: &str, work: &Path) -> Run {
    boot_with(platform, work, VolumeFormat::Iso)
}

/// [`boot`] with a data volume in `format`.
fn boot_with(platform: &str, work: &Path, format: VolumeFormat) -> Run {
    let image = image_dir(&["vmlinuz"], "cargo xtask image");
    let disk = unpack(&artifact(&image, platform), work);
    let overlay = overlay(&disk, work);
    let network = match platform {
        "azure" => AZURE_NET,
        "alibabacloud" => ALIBABA_NET,
        _ => LINK_LOCAL,
    };
    let node = network.guest();
    success(
        Command::new(binary("talosctl"))
            .args(["gen", "config", platform, &format!("https://{node}:6443")])
            .arg("--output-dir")
            .arg(work)
            .output()
            .unwrap(),
    );
    let config = std::fs::read(work.join("controlplane.yaml")).unwrap();
    let volume = instance(platform)
        .and_then(|instance| data_volume(platform, instance, network, &config, work, format));
    let server = instance(platform)
        .and_then(|instance| provider(platform, instance, config))
        .map(|answer| MetadataServer::start(SERVER_IP, answer).unwrap());
    let mut host_services = Vec::new();
    if let Some(server) = &server {
        let relay = server.relay_command(work).unwrap();
        let addresses: &[Ipv4Addr] = match platform {
            "azure" => &[METADATA_IP, WIRE_SERVER_IP],
            "scaleway" => &[SCALEWAY_IP],
            "alibabacloud" => &[ALIBABA_IP],
            _ => &[METADATA_IP],
        };
        host_services.extend(addresses.iter().map(|address| HostService {
            address: *address,
            port: 80,
            command: relay.clone(),
        }));
    }
    let mut vm = Vm::start_with(
        &VmConfig {
            name: platform.into(),
            out_dir: work.into(),
            boot: Boot::Disk,
            disk: Some(overlay),
            probe_kernel: image.join("vmlinuz"),
            memory_mib: 1024,
            api_port: 0,
            network,
            host_services,
        },
        &Extras {
            raw_disks: volume.iter().cloned().collect(),
            ..Extras::default()
        },
    )
    .unwrap();
    let talosctl = Talosctl {
        talosconfig: work.join("talosconfig"),
        port: vm.api.port(),
        node,
    };
    // A data volume's user data is taken in the `platform` phase, before the API answers.
    let taken_from_volume = volume.as_ref().map(|_| {
        vm.wait_for_console(USER_DATA_TAKEN, 0, BOOT_TIMEOUT)
            .unwrap_or_else(|error| panic!("{platform}: {error}"));
        Instant::now()
    });
    let unanswered = "does not answer as expected";
    let console = vm
        .wait_for_console(
            if server.is_some() || !knows_metadata_service(platform) {
                API_READY
            } else {
                unanswered
            },
            0,
            BOOT_TIMEOUT,
        )
        .unwrap_or_else(|error| panic!("{platform}: {error}"));
    assert!(
        console.contains(&format!("talos.platform={platform}")),
        "{platform}: {console}"
    );
    if server.is_none() && knows_metadata_service(platform) {
        return Run {
            outcome: Outcome::Unanswered,
            boot: vm.started.elapsed(),
            api_after_config: None,
            vm,
            server,
            talosctl,
        };
    }
    let secure = || talosctl.secure(&["version"]).status.success();
    let insecure = || talosctl.insecure(&["version"]).status.success();
    // A mock gives a config: mutual TLS answers. Without one (or if the config was not taken),
    // maintenance mode does.
    let configured = if server.is_some() || volume.is_some() {
        until(Duration::from_secs(90), secure)
    } else {
        None
    };
    let (outcome, answered) = match configured {
        Some(answered) => (Outcome::Configured, answered),
        None => {
            let answered = until(Duration::from_secs(60), insecure).unwrap_or_else(|| {
                panic!(
                    "{platform}: neither mutual TLS nor maintenance mode answers\n{}",
                    vm.console_text()
                )
            });
            (Outcome::Maintenance, answered)
        }
    };
    // The config has arrived when the node has done with the metadata service (it asks once,
    // in its `platform` phase, the user data among the rest), or has read its data volume.
    let config_arrived = server
        .as_ref()
        .and_then(|server| Some(server.requests().last()?.at))
        .or(taken_from_volume);
    let api_after_config = config_arrived.map(|at| answered.duration_since(at));
    Run {
        outcome,
        boot: answered.duration_since(vm.started),
        api_after_config,
        vm,
        server,
        talosctl,
    }
}

/// Whether machined asks a metadata service for `platform` (the rest read local volumes or
/// nothing).
fn knows_metadata_service(platform: &str) -> bool {
    !matches!(platform, "metal" | "nocloud" | "opennebula" | "vmware")
}

/// The node of a configured `run` shows `instance` in its platform metadata and hostname,
/// and no longer answers in maintenance mode.
fn shows_the_metadata(platform: &str, run: &Run) {
    let console = run.vm.console_text();
    assert_eq!(run.outcome, Outcome::Configured, "{platform}: {console}");
    let instance = instance(platform).unwrap();
    let metadata = success(
        run.talosctl
            .secure(&["get", "platformmetadata", "-o", "yaml"]),
    );
    let wanted = [
        ("platform", platform),
        ("hostname", instance.hostname),
        ("instanceId", instance.instance_id),
        ("instanceType", instance.instance_type),
        ("region", instance.region),
        ("zone", instance.zone),
    ];
    let document: serde_norway::Value = serde_norway::from_str(&metadata)
        .unwrap_or_else(|error| panic!("{platform}: {error}: {metadata}"));
    for (key, value) in wanted.iter().filter(|(_, value)| !value.is_empty()) {
        assert_eq!(
            document["spec"][key].as_str(),
            Some(*value),
            "{platform}: {key} in\n{metadata}"
        );
    }
    let short = instance.hostname.split('.').next().unwrap();
    // HostnameStatus comes from networkd, which may start after apid answers.
    let mut hostname = String::new();
    let shown = until(Duration::from_secs(30), || {
        let output = run.talosctl.secure(&["get", "hostname"]);
        hostname = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        hostname
            .lines()
            .any(|l| l.split_whitespace().any(|w| w == short))
    });
    assert!(
        shown.is_some(),
        "{platform}: hostname {short} not in\n{hostname}"
    );
    assert!(
        !run.talosctl.insecure(&["version"]).status.success(),
        "{platform}: still in maintenance mode"
    );
    let api = run.api_after_config.unwrap();
    eprintln!(
        "{platform}: configured {:.1} s after QEMU started, API {:.1} s after the user data",
        run.boot.as_secs_f64(),
        api.as_secs_f64()
    );
}

/// The node of a configured `run` has the address its provider's network config added
/// (nocloud's `network-config`, OpenNebula's context), besides the one it reaches QEMU by.
fn applies_the_provider_network(platform: &str, run: &Run) {
    let mut addresses = String::new();
    // networkd's config controller backs off while networkd starts: up to 30 s more.
    let shown = until(Duration::from_secs(60), || {
        let output = run.talosctl.secure(&["get", "addresses"]);
        addresses = String::from_utf8_lossy(&output.stdout).into_owned();
        addresses.contains(PROVIDER_ADDRESS)
    });
    let console = run.vm.console_text();
    let said: Vec<&str> = console
        .lines()
        .filter(|l| l.contains(&format!("machined: {platform}")) || l.contains("network"))
        .collect();
    assert!(
        shown.is_some(),
        "{platform}: {PROVIDER_ADDRESS} not in\n{addresses}\nmachined said:\n{}",
        said.join("\n")
    );
}

#[test]
fn aws_raw_image_takes_its_config_and_metadata_from_imdsv2() {
    let _vm_slot = one_vm();
    let work = tempfile::tempdir().unwrap();
    let run = boot("aws", work.path());
    shows_the_metadata("aws", &run);
    let requests = run.server.as_ref().unwrap().requests();
    assert_eq!(requests[0].line(), "PUT /latest/api/token");
    assert!(
        requests[1..]
            .iter()
            .all(|r| r.header("x-aws-ec2-metadata-token") == Some(AWS_TOKEN)),
        "every GET carries the token"
    );
}

#[test]
fn gcp_disk_raw_from_its_tar_gz_takes_its_config_from_the_metadata_server() {
    let _vm_slot = one_vm();
    let work = tempfile::tempdir().unwrap();
    let run = boot("gcp", work.path());
    shows_the_metadata("gcp", &run);
}

#[test]
fn azure_vhd_takes_its_config_from_imds_and_reports_ready_to_the_wire_server() {
    let _vm_slot = one_vm();
    let work = tempfile::tempdir().unwrap();
    let run = boot("azure", work.path());
    shows_the_metadata("azure", &run);
    let requests = run.server.as_ref().unwrap().requests();
    let health = requests
        .iter()
        .find(|r| r.line() == "POST /machine/?comp=health")
        .unwrap_or_else(|| panic!("no health report: {requests:?}"));
    assert_eq!(health.header("host"), Some("168.63.129.16"));
    let report = String::from_utf8_lossy(&health.body);
    assert!(report.contains("<State>Ready</State>"), "{report}");
    assert!(
        report.contains("<GoalStateIncarnation>3</GoalStateIncarnation>"),
        "{report}"
    );
    let console = run.vm.console_text();
    assert!(
        console.contains("azure: reported ready to the wire server (incarnation 3)"),
        "{console}"
    );
}

#[test]
fn openstack_raw_image_takes_its_config_from_the_metadata_service() {
    let _vm_slot = one_vm();
    let work = tempfile::tempdir().unwrap();
    let run = boot("openstack", work.path());
    shows_the_metadata("openstack", &run);
}

#[test]
fn nocloud_raw_image_takes_its_config_metadata_and_network_from_its_cidata_volume() {
    let _vm_slot = one_vm();
    let work = tempfile::tempdir().unwrap();
    let run = boot("nocloud", work.path());
    shows_the_metadata("nocloud", &run);
    let console = run.vm.console_text();
    assert!(
        console.contains("machined: nocloud: config taken from /dev/vdb"),
        "{console}"
    );
    applies_the_provider_network("nocloud", &run);
}

#[test]
fn vmware_vmdk_from_its_ova_boots_into_maintenance_mode() {
    let _vm_slot = one_vm();
    let work = tempfile::tempdir().unwrap();
    let run = boot("vmware", work.path());
    assert_eq!(
        run.outcome,
        Outcome::Maintenance,
        "{}",
        run.vm.console_text()
    );
    let version = success(run.talosctl.insecure(&["version"]));
    assert!(version.contains("Tag:"), "{version}");
}

/// Every platform of `TALOS_RS_PLATFORMS` (comma-separated; default: every artifact in
/// `_out/image`), one VM at a time, a line of figures each; fails when one failed.
#[test]
#[ignore = "a TCG boot per platform (minutes): `cargo xtask test-platforms` runs it"]
fn every_platform_artifact_boots() {
    let _vm_slot = one_vm();
    let platforms: Vec<String> = match std::env::var("TALOS_RS_PLATFORMS") {
        Ok(list) => list.split(',').map(str::to_string).collect(),
        Err(_) => PLATFORMS.iter().map(|p| p.to_string()).collect(),
    };
    let mut failed = Vec::new();
    for platform in &platforms {
        let work = tempfile::tempdir().unwrap();
        let result = std::panic::catch_unwind(|| {
            // CI boots nocloud with an iso9660 cidata volume: here it is FAT.
            let format = match platform.as_str() {
                "nocloud" => VolumeFormat::Fat,
                _ => VolumeFormat::Iso,
            };
            let run = boot_with(platform, work.path(), format);
            // A platform this test serves must end configured, never in maintenance mode.
            if instance(platform).is_some() {
                shows_the_metadata(platform, &run);
            }
            if matches!(platform.as_str(), "nocloud" | "opennebula") {
                applies_the_provider_network(platform, &run);
            }
            (run.outcome, run.boot, run.api_after_config)
        });
        let line = match result {
            Ok((outcome, boot, api)) => format!(
                "pass: {outcome:?}, boot {:.1} s{}",
                boot.as_secs_f64(),
                api.map(|api| format!(", API {:.1} s after the user data", api.as_secs_f64()))
                    .unwrap_or_default()
            ),
            Err(_) => {
                failed.push(platform.clone());
                "FAIL".into()
            }
        };
        println!("platform-boot {platform} {line}");
    }
    assert!(failed.is_empty(), "failed: {failed:?}");
}

/// Every platform with a disk image (upstream's names; `container` has none).
const PLATFORMS: &[&str] = &[
    "metal",
    "nocloud",
    "aws",
    "gcp",
    "openstack",
    "hcloud",
    "digital-ocean",
    "akamai",
    "alibabacloud",
    "azure",
    "cloudstack",
    "equinixMetal",
    "exoscale",
    "opennebula",
    "oracle",
    "scaleway",
    "upcloud",
    "vmware",
    "vultr",
];
