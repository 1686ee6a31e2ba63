//! The kexec seam: `kexec_file_load(2)`, which stages a kernel and its initramfs so that the
//! next `reboot(LINUX_REBOOT_CMD_KEXEC)` starts them directly, without firmware and GRUB.
//! Like [`loopdev`](super::loopdev), one of the few modules of machined allowed `unsafe`.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd as _;

/// Stages `kernel` with `initramfs` and `cmdline` for the next kexec reboot.
pub fn load(kernel: &File, initramfs: &File, cmdline: &str) -> io::Result<()> {
    let cmdline = CString::new(cmdline.trim())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in the command line"))?;
    let length = cmdline.as_bytes_with_nul().len();
    // SAFETY: kexec_file_load reads the two open descriptors and `length` bytes at the pointer,
    // which is the NUL-terminated command line owned by `cmdline` for the whole call; flags 0.
    let result = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_kexec_file_load,
            kernel.as_raw_fd(),
            initramfs.as_raw_fd(),
            length,
            cmdline.as_ptr(),
            0 as nix::libc::c_ulong,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
