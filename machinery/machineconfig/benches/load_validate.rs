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

/// The generated control plane config followed by 100 typed documents of five kinds (20 each:
/// dummy links, registry mirrors, registry credentials, static hosts, CRI customizations).
fn hundred_documents(c: &mut Criterion) {
    let bundle = pki::SecretsBundle::generate().expect("secrets bundle");
    let spec = ClusterSpec::new("bench", "https://10.5.0.2:6443");
    let generated = controlplane(&bundle, &spec).expect("generated controlplane.yaml");
    let mut yaml = generated.to_yaml().expect("encodes");
    for i in 0..20 {
        yaml.push_str(&format!(
            "---\napiVersion: v1alpha1\nkind: DummyLinkConfig\nname: dummy{i}\n\
             addresses: [{{address: 10.60.{i}.1/32}}]\n\
             ---\napiVersion: v1alpha1\nkind: RegistryMirrorConfig\nname: registry{i}.example\n\
             endpoints: [{{url: 'https://mirror{i}.example:5000'}}, {{url: 'http://10.61.0.{i}/v2', overridePath: true}}]\n\
             ---\napiVersion: v1alpha1\nkind: RegistryAuthConfig\nname: registry{i}.example\n\
             username: user{i}\npassword: secret{i}\n\
             ---\napiVersion: v1alpha1\nkind: StaticHostConfig\nname: 10.62.0.{i}\n\
             hostnames: [host{i}.example, host{i}]\n\
             ---\napiVersion: v1alpha1\nkind: CRICustomizationConfig\nname: part{i}\n\
             content: |\n  [plugins.\"io.containerd.cri.v1.images\".registry.headers]\n    X-Part-{i} = [\"{i}\"]\n"
        ));
    }
    let config = Config::from_yaml(&yaml).expect("loads");
    assert_eq!(config.documents.len(), generated.documents.len() + 100);
    config.validate(RuntimeMode::Metal, true).expect("valid");

    let mut group = c.benchmark_group("100 documents");
    group.throughput(Throughput::Bytes(yaml.len() as u64));
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

criterion_group!(
    benches,
    load_and_validate,
    hundred_documents,
    hostile_and_large
);
criterion_main!(benches);
