//! The watchdog seam: a `/dev/watchdogN` device opened, given a timeout and fed through the
//! kernel's watchdog ioctls (linux/watchdog.h), and closed with the magic `V` that disarms it.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::AsRawFd as _;
use std::path::Path;

use crate::watchdog::{WatchdogDevice, WatchdogDevices};

/// `WDIOC_KEEPALIVE`: `_IOR('W', 5, int)`.
const WDIOC_KEEPALIVE: u32 = 0x8004_5705;
/// `WDIOC_SETTIMEOUT`: `_IOWR('W', 6, int)`.
const WDIOC_SETTIMEOUT: u32 = 0xC004_5706;

/// Opens the host's watchdog devices.
#[derive(Debug, Default)]
pub struct LinuxWatchdogs;

impl WatchdogDevices for LinuxWatchdogs {
    fn open(&mut self, device: &Path) -> std::io::Result<Box<dyn WatchdogDevice>> {
        let file = File::options().read(true).write(true).open(device)?;
        Ok(Box::new(LinuxWatchdog { file }))
    }
}

/// An open watchdog device.
#[derive(Debug)]
struct LinuxWatchdog {
    file: File,
}

impl WatchdogDevice for LinuxWatchdog {
    fn set_timeout(&mut self, seconds: u32) -> std::io::Result<()> {
        let mut timeout = nix::libc::c_int::try_from(seconds)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: WDIOC_SETTIMEOUT reads and writes one int through the pointer, which points
        // at a live local for the whole call; the descriptor is open.
        let result = unsafe {
            nix::libc::ioctl(
                self.file.as_raw_fd(),
                WDIOC_SETTIMEOUT as _,
                &mut timeout as *mut nix::libc::c_int,
            )
        };
        if result < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn keep_alive(&mut self) -> std::io::Result<()> {
        let mut ignored: nix::libc::c_int = 0;
        // SAFETY: WDIOC_KEEPALIVE at most writes one int through the pointer, which points at
        // a live local for the whole call; the descriptor is open.
        let result = unsafe {
            nix::libc::ioctl(
                self.file.as_raw_fd(),
                WDIOC_KEEPALIVE as _,
                &mut ignored as *mut nix::libc::c_int,
            )
        };
        if result < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for LinuxWatchdog {
    fn drop(&mut self) {
        // The magic close: a driver without `nowayout` stops the countdown.
        if let Err(error) = self.file.write_all(b"V") {
            tracing::error!(%error, "cannot disarm the hardware watchdog");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request numbers as linux/watchdog.h builds them with `_IOR`/`_IOWR`.
    #[test]
    fn request_numbers_match_the_kernels_macros() {
        const fn ioc(direction: u32, number: u32) -> u32 {
            let size = std::mem::size_of::<nix::libc::c_int>() as u32;
            (direction << 30) | (size << 16) | ((b'W' as u32) << 8) | number
        }
        const READ: u32 = 2;
        const READ_WRITE: u32 = 3;
        assert_eq!(WDIOC_KEEPALIVE, ioc(READ, 5));
        assert_eq!(WDIOC_SETTIMEOUT, ioc(READ_WRITE, 6));
    }

    /// The ioctls reach the kernel and come back with its answer: a file that is no watchdog
    /// refuses both (ENOTTY), and a missing device cannot be opened.
    #[test]
    fn the_ioctls_reach_the_kernel() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut device = LinuxWatchdogs.open(file.path()).unwrap();
        let refused = device.set_timeout(30).unwrap_err();
        assert_eq!(refused.raw_os_error(), Some(nix::libc::ENOTTY));
        let refused = device.keep_alive().unwrap_err();
        assert_eq!(refused.raw_os_error(), Some(nix::libc::ENOTTY));
        drop(device);
        assert_eq!(
            std::fs::read(file.path()).unwrap(),
            b"V",
            "closed with the magic V"
        );
        assert!(
            LinuxWatchdogs
                .open(Path::new("/dev/no-such-watchdog"))
                .is_err()
        );
    }
}
