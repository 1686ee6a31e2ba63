#!/usr/bin/env bash
# The main job: build talos-rs, generate a cluster's configs and validate them, then boot three
# dev-mode control-plane nodes on 127.10.0.2-4 and manage them with talosctl through the first
# node's apid. The nodes are stopped (SIGTERM, services stopped in order) on exit. Then the
# image in QEMU, a 3+1 cluster in Docker and a 1+1 cluster of QEMU VMs (`talosctl cluster create`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

cargo build --release -q --bins
bin=${CARGO_TARGET_DIR:-target}/release
out=_out/demo
rm -rf "$out"
mkdir -p "$out"

"$bin/talosctl" gen config demo https://127.10.0.2:6443 --output-dir "$out"
for mode in metal cloud container; do
  for file in controlplane worker; do
    "$bin/talosctl" validate --config "$out/$file.yaml" --mode "$mode" --strict
  done
done

pids=()
stop_nodes() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait; }
trap stop_nodes EXIT
for i in 2 3 4; do
  state="$out/node-$i"
  mkdir -p "$state/system/state"
  cp "$out/controlplane.yaml" "$state/system/state/config.yaml"
  "$bin/machined" --state-dir "$state" --api-address "127.10.0.$i:50000" --hostname "node-$i" \
    >"$state/machined.log" 2>&1 &
  pids+=($!)
done

talosctl() { "$bin/talosctl" --talosconfig "$out/talosconfig" -e 127.10.0.2 "$@"; }
for _ in $(seq 100); do talosctl -n 127.10.0.4 version >/dev/null 2>&1 && break; sleep 0.2; done
talosctl config info
talosctl -n 127.10.0.2 version
talosctl -n 127.10.0.2,127.10.0.3,127.10.0.4 services
talosctl -n 127.10.0.2,127.10.0.3,127.10.0.4 memory
talosctl -n 127.10.0.3 logs apid --tail 3
talosctl -n 127.10.0.4 read /proc/loadavg
talosctl -n 127.10.0.2 bootstrap
for _ in $(seq 150); do
  [ "$(talosctl -n 127.10.0.2 etcd members 2>/dev/null | grep -c false)" = 3 ] && break
  sleep 0.2
done
talosctl -n 127.10.0.2 etcd members
stop_nodes
trap - EXIT

# The operating system: build the image and boot its disk in QEMU (TCG), then talk to it:
# maintenance mode, apply-config --insecure, and mutual TLS.
cargo xtask qemu --disk --demo

# A local cluster in Docker, as upstream's quickstart: 3 control planes and a worker from the
# image's root filesystem, bootstrapped and health-checked by talosctl, then destroyed.
cargo xtask docker-image
clusters=$out/clusters
cluster() { "$bin/talosctl" --talosconfig "$out/cluster-talosconfig" cluster --name demo --state "$clusters" "$@"; }
trap 'cluster destroy >/dev/null 2>&1 || true' EXIT
cluster create docker --controlplanes 3 --workers 1 --subnet 10.5.0.0/24
cluster show
"$bin/talosctl" --talosconfig "$out/cluster-talosconfig" -n 10.5.0.5 services
cluster destroy
trap - EXIT

# The same with QEMU VMs of the OS image (built above): one control plane and one worker on a
# bridge inside a network namespace of their own, configured in maintenance mode.
trap 'cluster destroy >/dev/null 2>&1 || true' EXIT
cluster create qemu --controlplanes 1 --workers 1 --memory-controlplanes 1GiB --memory-workers 1GiB
cluster show
"$bin/talosctl" --talosconfig "$out/cluster-talosconfig" -n 10.5.0.3 version
cluster destroy
trap - EXIT
