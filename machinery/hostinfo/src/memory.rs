//! `Memory`: `/proc/meminfo`.

use proto::machine::{MemInfo, Memory};

use crate::procfile::ProcFile;
use crate::{Host, HostInfoError};

impl Host {
    /// Reads `/proc/meminfo`; values stay in the kernel's units (kB, or pages for the
    /// `HugePages_*` counts).
    pub fn memory(&self) -> Result<Memory, HostInfoError> {
        let file = ProcFile::read(self.proc_path("meminfo"))?;
        let mut info = MemInfo::default();
        for line in file.lines() {
            let Some((name, rest)) = line.text.split_once(':') else {
                continue;
            };
            let name = name.trim();
            let Some(slot) = field_named(&mut info, name) else {
                continue;
            };
            let value = rest
                .split_whitespace()
                .next()
                .ok_or_else(|| line.malformed(format!("{name} has no value")))?;
            *slot = line.parse(name, value)?;
        }
        Ok(Memory {
            metadata: None,
            meminfo: Some(info),
        })
    }
}

/// The `MemInfo` field that the `/proc/meminfo` key `name` fills.
fn field_named<'a>(info: &'a mut MemInfo, name: &str) -> Option<&'a mut u64> {
    let field = match name {
        "MemTotal" => &mut info.memtotal,
        "MemFree" => &mut info.memfree,
        "MemAvailable" => &mut info.memavailable,
        "Buffers" => &mut info.buffers,
        "Cached" => &mut info.cached,
        "SwapCached" => &mut info.swapcached,
        "Active" => &mut info.active,
        "Inactive" => &mut info.inactive,
        "Active(anon)" => &mut info.activeanon,
        "Inactive(anon)" => &mut info.inactiveanon,
        "Active(file)" => &mut info.activefile,
        "Inactive(file)" => &mut info.inactivefile,
        "Unevictable" => &mut info.unevictable,
        "Mlocked" => &mut info.mlocked,
        "SwapTotal" => &mut info.swaptotal,
        "SwapFree" => &mut info.swapfree,
        "Dirty" => &mut info.dirty,
        "Writeback" => &mut info.writeback,
        "AnonPages" => &mut info.anonpages,
        "Mapped" => &mut info.mapped,
        "Shmem" => &mut info.shmem,
        "Slab" => &mut info.slab,
        "SReclaimable" => &mut info.sreclaimable,
        "SUnreclaim" => &mut info.sunreclaim,
        "KernelStack" => &mut info.kernelstack,
        "PageTables" => &mut info.pagetables,
        "NFS_Unstable" => &mut info.nfsunstable,
        "Bounce" => &mut info.bounce,
        "WritebackTmp" => &mut info.writebacktmp,
        "CommitLimit" => &mut info.commitlimit,
        "Committed_AS" => &mut info.committedas,
        "VmallocTotal" => &mut info.vmalloctotal,
        "VmallocUsed" => &mut info.vmallocused,
        "VmallocChunk" => &mut info.vmallocchunk,
        "HardwareCorrupted" => &mut info.hardwarecorrupted,
        "AnonHugePages" => &mut info.anonhugepages,
        "ShmemHugePages" => &mut info.shmemhugepages,
        "ShmemPmdMapped" => &mut info.shmempmdmapped,
        "CmaTotal" => &mut info.cmatotal,
        "CmaFree" => &mut info.cmafree,
        "HugePages_Total" => &mut info.hugepagestotal,
        "HugePages_Free" => &mut info.hugepagesfree,
        "HugePages_Rsvd" => &mut info.hugepagesrsvd,
        "HugePages_Surp" => &mut info.hugepagessurp,
        "Hugepagesize" => &mut info.hugepagesize,
        "DirectMap4k" => &mut info.directmap4k,
        "DirectMap2M" => &mut info.directmap2m,
        "DirectMap1G" => &mut info.directmap1g,
        _ => return None,
    };
    Some(field)
}
