#!/usr/bin/env bash
# Runs every test of the workspace (installing what they need first).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

cargo build --workspace --bins --locked
# The OS image for tests/tests/image.rs (QEMU), and its root filesystem as the Docker image
# of tests/tests/docker_cluster.rs.
cargo xtask image
# The Secure Boot UKI, disk image and ISO of tests/tests/secureboot.rs, from the image above.
cargo xtask image --secureboot --prebuilt
# The platform artifacts tests/tests/platforms.rs boots, packed from the image above.
cargo xtask image --platform aws,gcp,azure,openstack,nocloud,vmware --prebuilt
cargo xtask docker-image
cargo test --workspace --all-targets --locked "$@"
