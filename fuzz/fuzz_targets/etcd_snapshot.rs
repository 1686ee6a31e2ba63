//! etcd snapshot files, as a node reads one uploaded with `EtcdRecover` (and talosctl one it is
//! given): the bbolt walk and the hash check end in a status or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("etcd-snapshot-fuzz-{}", std::process::id()));
    std::fs::write(&path, data).expect("the fuzz input is written");
    if let Ok(status) = etcdsnapshot::status(&path) {
        assert!(status.total_size <= data.len() as u64);
    }
    let _ = etcdsnapshot::check_integrity(&path, false);
});
