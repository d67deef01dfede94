#!/usr/bin/env bash
# Install everything Berth's build, demo and tests need on Debian 12, as root.
# Idempotent: safe to run again.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "setup-debian.sh: run as root (it installs Debian packages)" >&2
    exit 1
fi

packages=(
    # build
    build-essential pkg-config libseccomp-dev
    # fixtures: the busybox rootfs every test uses
    busybox-static
    # tools the tests drive: ps, ip, nft, unshare, script
    procps iproute2 nftables util-linux bsdextrautils time
    # groff checks the generated man pages
    groff-base
    # a static init for `berth run --init` (tini-static, as docker-init is)
    tini
    # reference runtimes and engines for conformance, swap-in tests and benches
    runc crun podman conmon uidmap fuse-overlayfs hyperfine containerd docker.io
    # image interop and the local registry the pull/push tests start on 127.0.0.1
    skopeo umoci docker-registry tar
    # network benchmarks: iperf3, and netavark (podman's) as the reference
    iperf3 netavark
    # rootless networking (berth run as a user): pasta
    passt
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Rootless networking opens /dev/net/tun as the user. Debian's udev rule
# makes it 0666 (50-udev-default.rules); a host without udev (a container, a
# minimal VM) leaves the kernel's 0600: set the Debian mode.
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
    chmod 0666 /dev/net/tun
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup-debian.sh: cargo not found: install a Rust toolchain (rustup) first" >&2
    exit 1
fi
echo "setup-debian.sh: all packages present"
