//! Debug container images, as a node reads a tarball uploaded with `ImageService.Import` that is
//! not an installer (`talosctl debug IMAGE.tar`): importing ends in a stored image or an error,
//! never a panic; an imported image unpacks, or is refused, without writing outside its root
//! and without leaving a half-imported image in the store.
#![no_main]

use libfuzzer_sys::fuzz_target;
use machined::debug_image;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("debug-image-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = dir.join("store");
    let rootfs = dir.join("root");
    std::fs::create_dir_all(&rootfs).expect("the root folder is created");
    let tarball = dir.join("image.tar");
    std::fs::write(&tarball, data).expect("the fuzz input is written");
    match debug_image::import(&store, &tarball) {
        Ok(image) => {
            let _ = debug_image::unpack(&image, &rootfs);
        }
        Err(_) => {
            let stored = debug_image::list(&store).expect("the store is readable");
            assert!(stored.is_empty(), "a refused import left an image");
        }
    }
    let mut beside: Vec<String> = std::fs::read_dir(&dir)
        .expect("the work folder is readable")
        .map(|entry| entry.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert!(
        beside.iter().all(|name| ["image.tar", "root", "store"].contains(&name.as_str())),
        "written beside the store and root: {beside:?}"
    );
});
