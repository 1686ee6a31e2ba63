//! Every reader against the hand-written procfs/sysfs trees under `tests/fixtures/`.

use std::path::PathBuf;

use hostinfo::{Host, HostInfoError};
use proto::machine::connect_record::{State, TimerActive};
use proto::machine::netstat_request::{Feature, Filter, L4proto, NetNs};
use proto::machine::{ConnectRecord, NetstatRequest};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn host() -> Host {
    Host::new(fixture("host/proc"), fixture("host/sys"))
}

fn malformed() -> Host {
    Host::new(fixture("malformed/proc"), fixture("malformed/sys"))
}

#[test]
fn memory_maps_every_meminfo_key_in_kilobytes() {
    let memory = host().memory().expect("meminfo parses");
    assert!(memory.metadata.is_none());
    let info = memory.meminfo.expect("meminfo is set");
    let expected = [
        (info.memtotal, 16_318_412),
        (info.memfree, 1_000_001),
        (info.memavailable, 8_000_002),
        (info.buffers, 300_003),
        (info.cached, 4_000_004),
        (info.swapcached, 5),
        (info.active, 5_000_006),
        (info.inactive, 3_000_007),
        (info.activeanon, 2_000_008),
        (info.inactiveanon, 100_009),
        (info.activefile, 3_000_010),
        (info.inactivefile, 2_900_011),
        (info.unevictable, 12),
        (info.mlocked, 13),
        (info.swaptotal, 2_097_148),
        (info.swapfree, 2_097_000),
        (info.dirty, 116),
        (info.writeback, 17),
        (info.anonpages, 1_900_018),
        (info.mapped, 600_019),
        (info.shmem, 200_020),
        (info.slab, 500_021),
        (info.sreclaimable, 300_022),
        (info.sunreclaim, 200_023),
        (info.kernelstack, 16_024),
        (info.pagetables, 30_025),
        (info.nfsunstable, 26),
        (info.bounce, 27),
        (info.writebacktmp, 28),
        (info.commitlimit, 10_256_354),
        (info.committedas, 9_000_030),
        (info.vmalloctotal, 34_359_738_367),
        (info.vmallocused, 60_032),
        (info.vmallocchunk, 33),
        (info.hardwarecorrupted, 34),
        (info.anonhugepages, 20_035),
        (info.shmemhugepages, 36),
        (info.shmempmdmapped, 37),
        (info.cmatotal, 38),
        (info.cmafree, 39),
        (info.hugepagestotal, 40),
        (info.hugepagesfree, 41),
        (info.hugepagesrsvd, 42),
        (info.hugepagessurp, 43),
        (info.hugepagesize, 2048),
        (info.directmap4k, 400_045),
        (info.directmap2m, 12_000_046),
        (info.directmap1g, 5_000_047),
    ];
    for (index, (got, want)) in expected.into_iter().enumerate() {
        assert_eq!(got, want, "MemInfo field #{}", index + 1);
    }
}

#[test]
fn load_avg_and_hostname() {
    let load = host().load_avg().expect("loadavg parses");
    assert_eq!((load.load1, load.load5, load.load15), (0.52, 0.58, 0.59));
    assert_eq!(
        host().hostname().expect("hostname").hostname,
        "fixture-node"
    );
}

#[test]
fn system_stat_converts_ticks_to_seconds_and_reads_counters() {
    let stat = host().system_stat().expect("stat parses");
    let total = stat.cpu_total.expect("cpu total");
    assert_eq!(
        [
            total.user,
            total.nice,
            total.system,
            total.idle,
            total.iowait,
            total.irq,
            total.soft_irq,
            total.steal,
            total.guest,
            total.guest_nice
        ],
        [
            1143.1, 0.2, 143.22, 1187.56, 5.61, 0.03, 2.07, 21.26, 0.07, 0.01
        ]
    );
    assert_eq!(stat.cpu.len(), 2);
    assert_eq!(stat.cpu[1].system, 72.02);
    assert_eq!(stat.cpu[1].soft_irq, 1.38);
    assert_eq!(stat.irq_total, 837_804);
    assert_eq!(stat.irq, vec![0, 12, 0, 7, 0, 0]);
    assert_eq!(stat.context_switches, 1_049_019);
    assert_eq!(stat.boot_time, 1_795_313_984);
    assert_eq!(stat.process_created, 32_499);
    assert_eq!(stat.process_running, 2);
    assert_eq!(stat.process_blocked, 1);
    assert_eq!(stat.soft_irq_total, 390_498);
    let soft = stat.soft_irq.expect("softirq");
    assert_eq!(
        [
            soft.hi,
            soft.timer,
            soft.net_tx,
            soft.net_rx,
            soft.block,
            soft.block_io_poll,
            soft.tasklet,
            soft.sched,
            soft.hrtimer,
            soft.rcu
        ],
        [1, 62_078, 5, 19_379, 40_716, 2, 256, 123_419, 3, 144_639]
    );
}

#[test]
fn cpu_info_gives_one_message_per_processor_with_all_fields() {
    let cpus = host().cpu_info().expect("cpuinfo parses").cpu_info;
    assert_eq!(cpus.len(), 2);
    let cpu = &cpus[0];
    assert_eq!(cpu.processor, 0);
    assert_eq!(cpu.vendor_id, "GenuineIntel");
    assert_eq!(cpu.cpu_family, "6");
    assert_eq!(cpu.model, "85");
    assert_eq!(cpu.model_name, "Intel(R) Xeon(R) Fixture CPU @ 2.50GHz");
    assert_eq!(cpu.stepping, "7");
    assert_eq!(cpu.microcode, "0x1");
    assert_eq!(cpu.cpu_mhz, 2499.998);
    assert_eq!(cpu.cache_size, "36608 KB");
    assert_eq!(cpu.physical_id, "0");
    assert_eq!(cpu.siblings, 2);
    assert_eq!(cpu.core_id, "0");
    assert_eq!(cpu.cpu_cores, 2);
    assert_eq!(cpu.apic_id, "0");
    assert_eq!(cpu.initial_apic_id, "0");
    assert_eq!(cpu.fpu, "yes");
    assert_eq!(cpu.fpu_exception, "yes");
    assert_eq!(cpu.cpu_id_level, 13);
    assert_eq!(cpu.wp, "yes");
    assert_eq!(cpu.flags, ["fpu", "vme", "de", "pse"]);
    assert_eq!(cpu.bugs, ["spectre_v1", "spectre_v2"]);
    assert_eq!(cpu.bogo_mips, 4999.99);
    assert_eq!(cpu.cl_flush_size, 64);
    assert_eq!(cpu.cache_alignment, 64);
    assert_eq!(cpu.address_sizes, "46 bits physical, 48 bits virtual");
    assert_eq!(cpu.power_management, "");
    let second = &cpus[1];
    assert_eq!((second.processor, second.core_id.as_str()), (1, "1"));
    assert_eq!(second.cpu_mhz, 2500.5);
    assert!(second.bugs.is_empty());
    assert_eq!(second.power_management, "ts ttp");
}

#[test]
fn cpu_freq_stats_reads_each_cpu_with_cpufreq() {
    let stats = host().cpu_freq_stats().expect("cpufreq").cpu_freq_stats;
    assert_eq!(stats.len(), 2, "cpu2 has no cpufreq directory: {stats:?}");
    assert_eq!(
        stats[0].current_frequency, 2_400_000,
        "falls back to scaling_cur_freq"
    );
    assert_eq!(stats[0].minimum_frequency, 800_000);
    assert_eq!(stats[0].maximum_frequency, 3_500_000);
    assert_eq!(stats[0].governor, "performance");
    assert_eq!(
        stats[1].current_frequency, 2_600_000,
        "prefers cpuinfo_cur_freq"
    );
    assert_eq!(stats[1].governor, "powersave");
}

#[test]
fn cpu_freq_stats_without_sysfs_cpu_directory_is_empty() {
    let stats = malformed()
        .cpu_freq_stats()
        .expect("missing cpufreq is no error");
    assert!(stats.cpu_freq_stats.is_empty());
}

#[test]
fn processes_read_stat_cmdline_and_exe() {
    let page_size = 4096; // x86_64 and aarch64 (4k) hosts alike.
    let processes = host().processes().expect("processes").processes;
    assert_eq!(processes.len(), 2);
    let init = &processes[0];
    assert_eq!((init.pid, init.ppid, init.state.as_str()), (1, 0, "S"));
    assert_eq!(init.threads, 1);
    assert_eq!(init.cpu_time, 2.0);
    assert_eq!(init.virtual_memory, 2_000_000);
    assert_eq!(init.resident_memory, 300 * page_size);
    assert_eq!(init.command, "init");
    assert_eq!(init.executable, "/sbin/init");
    assert_eq!(init.args, "/sbin/init");
    let dns = &processes[1];
    assert_eq!((dns.pid, dns.ppid, dns.state.as_str()), (42, 1, "R"));
    assert_eq!(dns.command, "core dns) worker", "comm may contain ') '");
    assert_eq!(dns.threads, 12);
    assert_eq!(dns.cpu_time, 13.0);
    assert_eq!(dns.resident_memory, 2500 * page_size);
    assert_eq!(dns.executable, "", "no exe link reads as empty");
    assert_eq!(dns.args, "/coredns -conf /etc/coredns/Corefile");
}

#[test]
fn mounts_unescape_names_and_zero_unstatable_mount_points() {
    let stats = host().mounts().expect("mounts").stats;
    let names: Vec<(&str, &str)> = stats
        .iter()
        .map(|m| (m.filesystem.as_str(), m.mounted_on.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("/dev/vda1", "/"),
            ("proc", "/proc"),
            ("/dev/vdb", "/mnt/my disk")
        ]
    );
    assert!(stats[0].size > 0 && stats[0].available <= stats[0].size);
    assert_eq!((stats[2].size, stats[2].available), (0, 0));
}

#[test]
fn disk_stats_read_all_counters_and_sum_a_total() {
    let stats = host().disk_stats().expect("diskstats");
    let names: Vec<&str> = stats.devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["loop0", "vda", "vda1"]);
    let loop0 = &stats.devices[0];
    assert_eq!(
        [
            loop0.read_completed,
            loop0.read_merged,
            loop0.read_sectors,
            loop0.read_time_ms,
            loop0.write_completed,
            loop0.write_merged,
            loop0.write_sectors,
            loop0.write_time_ms,
            loop0.io_in_progress,
            loop0.io_time_ms,
            loop0.io_time_weighted_ms,
            loop0.discard_completed,
            loop0.discard_merged,
            loop0.discard_sectors,
            loop0.discard_time_ms
        ],
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    );
    assert_eq!(
        stats.devices[1].discard_completed, 0,
        "old kernels print 11 counters"
    );
    let total = stats.total.expect("total");
    assert_eq!(total.name, "total");
    assert_eq!(total.read_completed, 111);
    assert_eq!(total.io_time_weighted_ms, 1111);
    assert_eq!(total.discard_time_ms, 155);
}

#[test]
fn network_device_stats_read_every_interface_and_total() {
    let stats = host().network_device_stats().expect("net/dev");
    let eth0 = &stats.devices[1];
    assert_eq!(eth0.name, "eth0");
    assert_eq!(
        [
            eth0.rx_bytes,
            eth0.rx_packets,
            eth0.rx_errors,
            eth0.rx_dropped,
            eth0.rx_fifo,
            eth0.rx_frame,
            eth0.rx_compressed,
            eth0.rx_multicast,
            eth0.tx_bytes,
            eth0.tx_packets,
            eth0.tx_errors,
            eth0.tx_dropped,
            eth0.tx_fifo,
            eth0.tx_collisions,
            eth0.tx_carrier,
            eth0.tx_compressed
        ],
        [1000, 10, 1, 2, 3, 4, 5, 6, 2000, 20, 7, 8, 9, 10, 11, 12]
    );
    let total = stats.total.expect("total");
    assert_eq!(total.name, "eth0, lo");
    assert_eq!((total.rx_bytes, total.tx_packets), (4193, 49));
}

fn netstat(filter: Filter, pid: bool) -> Vec<ConnectRecord> {
    let request = NetstatRequest {
        filter: filter as i32,
        feature: Some(Feature { pid }),
        l4proto: Some(L4proto {
            tcp: true,
            tcp6: true,
            udp: true,
            udplite: true,
            ..L4proto::default()
        }),
        netns: Some(NetNs {
            hostnetwork: true,
            ..NetNs::default()
        }),
    };
    host().netstat(&request).expect("netstat").connectrecord
}

fn endpoints(records: &[ConnectRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            format!(
                "{} {}:{} {}:{}",
                r.l4proto, r.localip, r.localport, r.remoteip, r.remoteport
            )
        })
        .collect()
}

#[test]
fn netstat_renders_addresses_like_go_and_reads_every_column() {
    let all = netstat(Filter::All, false);
    assert_eq!(
        endpoints(&all),
        [
            "tcp 127.0.0.1:2000 0.0.0.0:0",
            "tcp 10.0.0.5:50000 10.0.0.9:40000",
            "tcp6 ::1:22 :::0",
            "tcp6 127.0.0.1:8080 127.0.0.2:54321",
            "tcp6 2001:db8::1:80 2001:db8::2:54322",
            "udp 0.0.0.0:53 0.0.0.0:0",
            "udp 127.0.0.1:40960 127.0.0.1:53",
        ]
    );
    let established = &all[1];
    assert_eq!(established.state, State::Established as i32);
    assert_eq!((established.txqueue, established.rxqueue), (10, 20));
    assert_eq!(established.tr, TimerActive::Keepalive as i32);
    assert_eq!(established.timerwhen, 1000);
    assert_eq!(established.retrnsmt, 3);
    assert_eq!(established.uid, 1000);
    assert_eq!(established.inode, 2001);
    assert_eq!(established.r#ref, 2);
    assert_eq!(established.pointer, 0xffff_9a1b_0000_0000);
    assert!(established.process.is_none(), "pid feature off");
    assert_eq!(all[0].state, State::Listen as i32);
    assert_eq!(all[4].state, State::TimeWait as i32);
    assert_eq!(all[4].tr, TimerActive::Timewait as i32);
    assert_eq!(all[5].state, State::Close as i32);
}

#[test]
fn netstat_filters_listening_and_connected_sockets() {
    assert_eq!(
        endpoints(&netstat(Filter::Listening, false)),
        [
            "tcp 127.0.0.1:2000 0.0.0.0:0",
            "tcp6 ::1:22 :::0",
            "udp 0.0.0.0:53 0.0.0.0:0"
        ]
    );
    assert_eq!(
        endpoints(&netstat(Filter::Connected, false)),
        [
            "tcp 10.0.0.5:50000 10.0.0.9:40000",
            "tcp6 127.0.0.1:8080 127.0.0.2:54321",
            "tcp6 2001:db8::1:80 2001:db8::2:54322",
            "udp 127.0.0.1:40960 127.0.0.1:53",
        ]
    );
}

#[test]
fn netstat_pid_feature_names_the_lowest_owning_process() {
    let listening = netstat(Filter::Listening, true);
    let owners: Vec<Option<(u32, &str)>> = listening
        .iter()
        .map(|r| r.process.as_ref().map(|p| (p.pid, p.name.as_str())))
        .collect();
    assert_eq!(
        owners,
        [Some((1, "init")), None, Some((42, "core dns) worker"))]
    );
}

#[test]
fn netstat_selects_only_the_requested_tables_and_host_netns() {
    let udp_only = NetstatRequest {
        l4proto: Some(L4proto {
            udp: true,
            ..L4proto::default()
        }),
        ..NetstatRequest::default()
    };
    let records = host().netstat(&udp_only).expect("udp").connectrecord;
    assert!(records.iter().all(|r| r.l4proto == "udp") && records.len() == 2);
    assert!(
        host()
            .netstat(&NetstatRequest::default())
            .expect("nothing selected")
            .connectrecord
            .is_empty()
    );
    let other_netns = NetstatRequest {
        netns: Some(NetNs {
            netns: vec!["cni-1234".to_owned()],
            ..NetNs::default()
        }),
        ..udp_only
    };
    let error = host().netstat(&other_netns).expect_err("netns refused");
    assert!(matches!(error, HostInfoError::NetnsUnsupported));
    assert!(
        error
            .to_string()
            .contains("netns selection is not supported")
    );
}

fn assert_malformed(result: Result<impl std::fmt::Debug, HostInfoError>, file: &str, line: usize) {
    match result {
        Err(HostInfoError::Malformed {
            path,
            line: got_line,
            reason,
        }) => {
            assert!(path.ends_with(file), "{path:?} should end with {file}");
            assert_eq!(got_line, line, "{reason}");
        }
        other => panic!("expected a Malformed error for {file}:{line}, got {other:?}"),
    }
}

#[test]
fn malformed_numbers_name_file_and_line() {
    assert_malformed(malformed().memory(), "meminfo", 2);
    assert_malformed(malformed().system_stat(), "stat", 2);
    assert_malformed(malformed().load_avg(), "loadavg", 1);
    let tcp = NetstatRequest {
        l4proto: Some(L4proto {
            tcp: true,
            ..L4proto::default()
        }),
        ..NetstatRequest::default()
    };
    assert_malformed(malformed().netstat(&tcp), "net/tcp", 2);
    let message = malformed().memory().expect_err("bad").to_string();
    assert!(
        message.contains("meminfo:2") && message.contains("MemFree"),
        "{message}"
    );
}

#[test]
fn missing_files_name_the_path() {
    let error = malformed()
        .cpu_info()
        .expect_err("no cpuinfo in this fixture");
    match error {
        HostInfoError::Read { path, .. } => assert!(path.ends_with("malformed/proc/cpuinfo")),
        other => panic!("expected Read, got {other:?}"),
    }
}
