//! `CPUInfo`: `/proc/cpuinfo`.

use proto::machine::{CpUsInfo, CpuInfo};

use crate::procfile::{Line, ProcFile};
use crate::{Host, HostInfoError};

impl Host {
    /// Reads `/proc/cpuinfo`, one [`CpuInfo`] per `processor` block. Keys other than the x86 ones
    /// the API knows are ignored.
    pub fn cpu_info(&self) -> Result<CpUsInfo, HostInfoError> {
        let file = ProcFile::read(self.proc_path("cpuinfo"))?;
        let mut cpus: Vec<CpuInfo> = Vec::new();
        for line in file.lines() {
            let Some((key, value)) = line.text.split_once(':') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            if key == "processor" {
                cpus.push(CpuInfo {
                    processor: line.parse(key, value)?,
                    ..CpuInfo::default()
                });
                continue;
            }
            // Lines before the first processor (or trailing machine-wide lines on some
            // architectures) belong to no CPU.
            let Some(cpu) = cpus.last_mut() else {
                continue;
            };
            fill(cpu, &line, key, value)?;
        }
        Ok(CpUsInfo {
            metadata: None,
            cpu_info: cpus,
        })
    }
}

/// Sets the field of `cpu` that the `/proc/cpuinfo` key `key` describes.
fn fill(cpu: &mut CpuInfo, line: &Line<'_>, key: &str, value: &str) -> Result<(), HostInfoError> {
    let words = || value.split_whitespace().map(str::to_owned).collect();
    match key {
        "vendor_id" => cpu.vendor_id = value.to_owned(),
        "cpu family" => cpu.cpu_family = value.to_owned(),
        "model" => cpu.model = value.to_owned(),
        "model name" => cpu.model_name = value.to_owned(),
        "stepping" => cpu.stepping = value.to_owned(),
        "microcode" => cpu.microcode = value.to_owned(),
        "cpu MHz" => cpu.cpu_mhz = line.parse(key, value)?,
        "cache size" => cpu.cache_size = value.to_owned(),
        "physical id" => cpu.physical_id = value.to_owned(),
        "siblings" => cpu.siblings = line.parse(key, value)?,
        "core id" => cpu.core_id = value.to_owned(),
        "cpu cores" => cpu.cpu_cores = line.parse(key, value)?,
        "apicid" => cpu.apic_id = value.to_owned(),
        "initial apicid" => cpu.initial_apic_id = value.to_owned(),
        "fpu" => cpu.fpu = value.to_owned(),
        "fpu_exception" => cpu.fpu_exception = value.to_owned(),
        "cpuid level" => cpu.cpu_id_level = line.parse(key, value)?,
        "wp" => cpu.wp = value.to_owned(),
        "flags" => cpu.flags = words(),
        "bugs" => cpu.bugs = words(),
        "bogomips" => cpu.bogo_mips = line.parse(key, value)?,
        "clflush size" => cpu.cl_flush_size = line.parse(key, value)?,
        "cache_alignment" => cpu.cache_alignment = line.parse(key, value)?,
        "address sizes" => cpu.address_sizes = value.to_owned(),
        "power management" => cpu.power_management = value.to_owned(),
        _ => {}
    }
    Ok(())
}
