//! The readers against the real `/proc` and `/sys` of the machine running the tests.

use std::io::Write;
use std::net::{TcpListener, TcpStream, UdpSocket};

use hostinfo::Host;
use proto::machine::connect_record::State;
use proto::machine::netstat_request::{Feature, Filter, L4proto};
use proto::machine::{ConnectRecord, NetstatRequest};

fn host() -> Host {
    Host::new("/proc", "/sys")
}

#[test]
fn memory_load_and_system_stat_are_plausible() {
    let info = host().memory().expect("meminfo").meminfo.expect("set");
    assert!(info.memtotal > 0 && info.memavailable <= info.memtotal);
    let load = host().load_avg().expect("loadavg");
    assert!(load.load1 >= 0.0 && load.load15 >= 0.0);
    let stat = host().system_stat().expect("stat");
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    assert!(stat.cpu.len() >= cpus, "{} cpu lines", stat.cpu.len());
    assert!(stat.boot_time > 1_500_000_000 && stat.context_switches > 0);
    assert!(stat.cpu_total.expect("total").user > 0.0);
    assert!(stat.process_running >= 1);
}

#[test]
fn cpu_info_and_cpufreq_read_without_error() {
    let cpus = host().cpu_info().expect("cpuinfo").cpu_info;
    assert!(!cpus.is_empty());
    assert_eq!(cpus[0].processor, 0);
    host()
        .cpu_freq_stats()
        .expect("cpufreq absent or present, never an error");
}

#[test]
fn processes_include_this_test_process() {
    let me = i32::try_from(std::process::id()).expect("pid fits i32");
    let processes = host().processes().expect("processes").processes;
    let this = processes
        .iter()
        .find(|p| p.pid == me)
        .expect("own process listed");
    assert_eq!(
        this.ppid,
        i32::try_from(std::os::unix::process::parent_id()).expect("ppid")
    );
    let exe = std::env::current_exe().expect("current exe");
    assert_eq!(this.executable, exe.to_string_lossy());
    assert!(
        this.args
            .starts_with(&*std::env::args().next().expect("argv0"))
    );
    assert!(this.threads >= 1 && this.resident_memory > 0 && this.virtual_memory > 0);
    assert!(processes.iter().any(|p| p.pid == 1));
    assert!(
        processes.windows(2).all(|w| w[0].pid < w[1].pid),
        "pid order"
    );
}

#[test]
fn mounts_disks_interfaces_and_hostname() {
    let mounts = host().mounts().expect("mounts").stats;
    let root = mounts
        .iter()
        .find(|m| m.mounted_on == "/")
        .expect("root is mounted");
    assert!(root.size > 0);
    host().disk_stats().expect("diskstats");
    let net = host().network_device_stats().expect("net/dev");
    assert!(net.devices.iter().any(|d| d.name == "lo"));
    let expected = nix::unistd::gethostname().expect("gethostname");
    assert_eq!(
        host().hostname().expect("hostname").hostname,
        expected.to_string_lossy()
    );
}

fn tcp_and_udp(filter: Filter) -> Vec<ConnectRecord> {
    let request = NetstatRequest {
        filter: filter as i32,
        feature: Some(Feature { pid: true }),
        l4proto: Some(L4proto {
            tcp: true,
            udp: true,
            ..L4proto::default()
        }),
        netns: None,
    };
    host().netstat(&request).expect("netstat").connectrecord
}

#[test]
fn netstat_sees_own_sockets_with_their_owner() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
    let port = u32::from(listener.local_addr().expect("addr").port());
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let udp_port = u32::from(udp.local_addr().expect("addr").port());
    let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    client.write_all(b"x").expect("write");
    let (_server_side, _) = listener.accept().expect("accept");
    let me = std::process::id();

    let listening = tcp_and_udp(Filter::Listening);
    let record = listening
        .iter()
        .find(|r| r.l4proto == "tcp" && r.localport == port)
        .expect("listener listed");
    assert_eq!(record.localip, "127.0.0.1");
    assert_eq!(record.state, State::Listen as i32);
    assert_eq!(record.process.as_ref().map(|p| p.pid), Some(me));
    assert!(
        listening
            .iter()
            .any(|r| r.l4proto == "udp" && r.localport == udp_port)
    );

    let connected = tcp_and_udp(Filter::Connected);
    assert!(
        connected
            .iter()
            .any(|r| r.remoteport == port && r.state == State::Established as i32),
        "client side of the connection"
    );
    assert!(
        !connected
            .iter()
            .any(|r| r.localport == port && r.state == State::Listen as i32)
    );
}
