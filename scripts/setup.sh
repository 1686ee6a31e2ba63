#!/usr/bin/env bash
# Installs what talos-rs needs on a Debian 12 machine (run as root). Idempotent: packages and
# targets already present are skipped, so every other script can call it first.
set -euo pipefail

packages=(protobuf-compiler libprotobuf-dev
  # timed, networkd and etcd tests: a real NTP server, iproute2, a DHCP server, etcd
  chrony iproute2 dnsmasq-base etcd-server etcd-client
  # the OS image (cargo xtask image/disk/qemu): QEMU, SquashFS, mkfs tools, boot loader, musl C
  qemu-system-x86 qemu-utils squashfs-tools cpio e2fsprogs xfsprogs dosfstools mtools gdisk
  grub-pc-bin grub-efi-amd64-bin xorriso musl-tools zstd
  # the OCI runtime the system services' shim runs (in the image)
  crun
  # Secure Boot (cargo xtask image/qemu --secureboot): the UKI stub, sbsign, OVMF's Secure Boot
  # firmware (and the plain UEFI firmware of --uefi), pip for virt-firmware (below)
  systemd-boot-efi sbsigntool ovmf python3-pip
  # tests: opening the support bundle, pinging for a packet capture, a terminal for the dashboard,
  # seeing a VIP's gratuitous ARP on a bridge, a static shell for the debug container's image
  unzip iputils-ping tmux tcpdump busybox-static)

install_missing() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Wait for another apt run (e.g. a second setup) rather than failing on its lock.
  apt_get() { apt-get -o DPkg::Lock::Timeout=600 "$@"; }
  apt_get update -qq
  # Packages such as chrony ship a system service; tests run their own instances, so apt must
  # not start the service (a system chronyd would steer the host clock). Docker images carry a
  # policy-rc.d that forbids starts; provide one for the install where it is missing.
  local own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
}
# Twice: an install can remove a package of the list that came from elsewhere (a backported
# qemu-utils is removed when Debian's qemu-system-x86 comes in); the second pass puts
# Debian's back.
install_missing
install_missing

# virt-fw-vars (PyPI virt-firmware; Debian 12 has no package) enrols the project's Secure Boot
# certificate in a copy of OVMF's variables. Debian's own Python refuses system-wide pip
# installs (PEP 668) unless told.
if ! command -v virt-fw-vars >/dev/null 2>&1; then
  echo "setup: installing virt-firmware (pip)" >&2
  python3 -m pip install --quiet virt-firmware 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages virt-firmware
fi

if ! command -v cargo >/dev/null 2>&1; then
  for dir in "$HOME/.cargo/bin" /usr/local/cargo/bin; do
    [ -x "$dir/cargo" ] && export PATH="$dir:$PATH"
  done
fi
command -v cargo >/dev/null 2>&1 || {
  echo "setup: cargo not found: install a Rust toolchain (rustup, Rust >= 1.95) first" >&2
  exit 1
}

# Static musl builds of the image's daemons.
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  echo "setup: adding the x86_64-unknown-linux-musl target" >&2
  rustup target add x86_64-unknown-linux-musl >/dev/null
fi
