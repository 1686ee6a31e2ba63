//! Project tasks that are not tests: `cargo xtask bench` runs the benchmarks and writes their
//! one table into `docs/benchmarks.md`; `bench-node`, `bench-boot`, `bench-lifecycle`,
//! `bench-cluster`, `bench-shipping`, `bench-pcap`, `bench-secureboot` and `bench-load` print
//! one bench's figures; `fuzz`, `faults` and `test-platforms` run the suites `docs/testing.md`
//! lists.

mod bench;
mod boot_bench;
mod cluster_bench;
mod docker_image;
mod etcd_bench;
mod external_bench;
mod figures;
mod fuzz;
mod image;
mod lifecycle_bench;
mod node_bench;
mod pcap_bench;
mod platform_boots;
mod secureboot_bench;
mod shipping_bench;
mod signing;
mod suites;
mod trustd_bench;
mod vm;
mod watch_bench;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench") => bench::run(&args[1..]),
        Some("bench-node") => bench::run_node(&args[1..]),
        Some("image") => image::run_image(&args[1..]),
        Some("keys") => signing::run_keys(&args[1..]),
        Some("verify") => signing::run_verify(&args[1..]),
        Some("docker-image") => docker_image::run_docker_image(),
        Some("qemu") => vm::run(&args[1..]),
        Some("bench-cluster") => cluster_bench::run(&args[1..]),
        Some("bench-shipping") => shipping_bench::run(),
        Some("bench-pcap") => pcap_bench::run(),
        Some("bench-boot") => boot_bench::run(&args[1..]),
        Some("bench-secureboot") => secureboot_bench::run_bench(&args[1..]),
        Some("bench-lifecycle") => lifecycle_bench::run(),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("faults") => suites::faults(),
        Some("test-clusters") => suites::test_clusters(),
        Some("test-platforms") => platform_boots::run(&args[1..]),
        Some("bench-load") => suites::bench_load(&args[1..]),
        Some(bench::MEASURE_GEN_CONFIG) => bench::measure_gen_config(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask bench [--quick | --only NAME,...] [--with-vm] [--prebuilt] [--no-docs] | bench-node [--prebuilt] | image [--secureboot] [--platform NAME|all] | keys [--force] | verify [--key FILE] [--node ADDR [--endpoint E] [--talosconfig F]] | docker-image | qemu [--name N] [--port P] [--disk | --uefi | --iso | --secureboot] [--demo] | bench-boot [--runs N] | bench-secureboot [--runs N] | bench-lifecycle | bench-cluster [--runs N] | bench-shipping | bench-pcap | fuzz [--seconds N] [TARGET ...] | faults | test-clusters | test-platforms [--platform NAME,...] | bench-load [--connections N] [--failed-auths N]"
            );
            std::process::exit(2);
        }
    }
}
