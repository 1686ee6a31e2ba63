//! Loading and validating a generated control plane config, the work machined does on every
//! boot and every ApplyConfiguration.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use machineconfig::generate::{ClusterSpec, controlplane};
use machineconfig::{Config, RuntimeMode};

fn load_and_validate(c: &mut Criterion) {
    let bundle = pki::SecretsBundle::generate().expect("secrets bundle");
    let spec = ClusterSpec::new("bench", "https://10.5.0.2:6443");
    let yaml = controlplane(&bundle, &spec)
        .and_then(|config| config.to_yaml())
        .expect("generated controlplane.yaml");

    let mut group = c.benchmark_group("controlplane.yaml");
    group.throughput(Throughput::Bytes(yaml.len() as u64));
    group.bench_function("load", |b| {
        b.iter(|| Config::from_yaml(black_box(&yaml)).expect("loads"))
    });
    let config = Config::from_yaml(&yaml).expect("loads");
    group.bench_function("validate", |b| {
        b.iter(|| {
            black_box(&config)
                .validate(RuntimeMode::Metal, true)
                .expect("valid")
        })
    });
    group.bench_function("load+validate", |b| {
        b.iter(|| {
            Config::from_yaml(black_box(&yaml))
                .expect("loads")
                .validate(RuntimeMode::Metal, true)
                .expect("valid")
        })
    });
    group.finish();
}

/// Hostile input: the audit's alias bomb (120 KB of text, 400 million nodes if expanded) is
/// refused by the decode budget; and a large config of the size inline manifests make (2 MB).
fn hostile_and_large(c: &mut Criterion) {
    let n = 20_000;
    let bomb = format!(
        "version: v1alpha1\ndebug: &a [{}1]\npersist: [{}*a]\n",
        "1,".repeat(n),
        "*a,".repeat(n)
    );
    let mut group = c.benchmark_group("hostile");
    group.sample_size(20);
    group.bench_function("alias bomb refused", |b| {
        b.iter(|| Config::from_yaml(black_box(&bomb)).expect_err("refused"))
    });
    let manifest =
        "        apiVersion: v1\n        kind: ConfigMap\n        data:\n          key: value\n"
            .repeat(22_000);
    let large = format!(
        "version: v1alpha1\ncluster:\n  inlineManifests:\n    - name: big\n      contents: |\n{manifest}"
    );
    group.throughput(Throughput::Bytes(large.len() as u64));
    group.bench_function("2 MB inline manifest load", |b| {
        b.iter(|| Config::from_yaml(black_box(&large)).expect("loads"))
    });
    group.finish();
}

criterion_group!(benches, load_and_validate, hostile_and_large);
criterion_main!(benches);
