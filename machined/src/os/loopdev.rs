//! The block-device seam: the two ioctls that attach a file to a free loop device, and the one
//! that re-reads a disk's partition table (an install). This is the
//! only module of machined allowed `unsafe`; each block says why it is sound.

use std::fs::File;
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};

use crate::error::MachinedError;

/// `LOOP_CTL_GET_FREE` (linux/loop.h): returns the number of a free loop device.
const LOOP_CTL_GET_FREE: u32 = 0x4C82;
/// `LOOP_SET_FD` (linux/loop.h): backs the loop device with the file descriptor argument.
const LOOP_SET_FD: u32 = 0x4C00;

/// Attaches `file` to a free loop device. The file is opened read-only, so the loop device
/// is read-only too.
pub fn attach(file: &Path) -> Result<PathBuf, MachinedError> {
    let control_path = Path::new("/dev/loop-control");
    let control = File::open(control_path).map_err(MachinedError::io("opening", control_path))?;
    // SAFETY: LOOP_CTL_GET_FREE takes no argument and only returns an integer; the descriptor
    // is open for the whole call.
    let number = unsafe { nix::libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
    if number < 0 {
        return Err(MachinedError::io(
            "finding a free loop device via",
            control_path,
        )(std::io::Error::last_os_error()));
    }
    let device = PathBuf::from(format!("/dev/loop{number}"));
    let backing = File::open(file).map_err(MachinedError::io("opening", file))?;
    let loop_device = File::options()
        .read(true)
        .open(&device)
        .map_err(MachinedError::io("opening", &device))?;
    // SAFETY: LOOP_SET_FD takes a file descriptor as its integer argument; both descriptors
    // are open for the whole call, and the kernel takes its own reference to the backing file.
    let result = unsafe {
        nix::libc::ioctl(
            loop_device.as_raw_fd(),
            LOOP_SET_FD as _,
            backing.as_raw_fd(),
        )
    };
    if result < 0 {
        return Err(MachinedError::io("attaching a loop device to", file)(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(device)
}

/// `BLKRRPART` (linux/fs.h): the kernel reads the disk's partition table again.
const BLKRRPART: u32 = 0x125F;

/// Makes the kernel read the partition table of the whole disk `disk` again (its partition
/// devices appear or change). Fails while a partition of it is in use.
pub fn reread_partitions(disk: &File, path: &Path) -> Result<(), MachinedError> {
    // SAFETY: BLKRRPART takes no argument; the descriptor is open for the whole call.
    let result = unsafe { nix::libc::ioctl(disk.as_raw_fd(), BLKRRPART as _) };
    if result < 0 {
        return Err(
            MachinedError::io("re-reading the partition table of", path)(
                std::io::Error::last_os_error(),
            ),
        );
    }
    Ok(())
}
