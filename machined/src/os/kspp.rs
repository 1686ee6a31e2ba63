//! Kernel self-protection sysctls machined sets at boot (upstream Talos applies the same KSPP
//! recommendations).

/// `(key, value)` with the key as under `/proc/sys` (dots for slashes).
pub const SYSCTLS: &[(&str, &str)] = &[
    ("kernel.kptr_restrict", "1"),
    ("kernel.dmesg_restrict", "1"),
    ("kernel.perf_event_paranoid", "3"),
    ("kernel.yama.ptrace_scope", "1"),
    ("user.max_user_namespaces", "0"),
    ("kernel.unprivileged_bpf_disabled", "1"),
    ("net.core.bpf_jit_harden", "2"),
];
