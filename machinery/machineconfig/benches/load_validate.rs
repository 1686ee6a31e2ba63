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

criterion_group!(benches, load_and_validate);
criterion_main!(benches);
