//! Installer image tarballs, as a node reads one uploaded with `ImageService.Import`: unpacking
//! ends in an image or an error, never a panic, and never writes more than the limits allow.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("installer-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the work folder is created");
    let tarball = dir.join("image.tar");
    std::fs::write(&tarball, data).expect("the fuzz input is written");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).expect("the output folder is created");
    let limits = installer::Limits {
        kernel: 1 << 16,
        initramfs: 1 << 16,
    };
    if installer::unpack(&tarball, &out, limits).is_ok() {
        for name in ["vmlinuz", "initramfs.img"] {
            let size = std::fs::metadata(out.join(name)).expect("unpacked").len();
            assert!(size <= 1 << 16);
        }
    }
});
