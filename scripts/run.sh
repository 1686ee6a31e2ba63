#!/usr/bin/env bash
# The main job, at this stage of talos-rs: build talosctl, generate a cluster's configs and
# validate them for every runtime mode, then show the generated talosconfig's context.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

cargo build --release -q -p talosctl
talosctl=target/release/talosctl
out=_out/demo
rm -rf "$out"

"$talosctl" gen config demo https://10.5.0.2:6443 --output-dir "$out"
for mode in metal cloud container; do
  for file in controlplane worker; do
    "$talosctl" validate --config "$out/$file.yaml" --mode "$mode" --strict
  done
done
"$talosctl" --talosconfig "$out/talosconfig" config info
