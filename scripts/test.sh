#!/usr/bin/env bash
# Runs every test of the workspace (installing what they need first).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

cargo build --workspace --bins --locked
# The OS image for tests/tests/image.rs (QEMU).
cargo xtask image
cargo test --workspace --all-targets --locked "$@"
