#!/usr/bin/env bash
# Install the system tools shiftkit drives (Verilator, Yosys, nextpnr-ice40, IceStorm) when they
# are missing, through apt-get. Safe to run again: it does nothing when everything is present.
set -euo pipefail

need=()
command -v verilator     >/dev/null 2>&1 || need+=(verilator)
command -v yosys         >/dev/null 2>&1 || need+=(yosys)
command -v nextpnr-ice40 >/dev/null 2>&1 || need+=(nextpnr-ice40)
command -v icepack       >/dev/null 2>&1 || need+=(fpga-icestorm)
command -v make          >/dev/null 2>&1 || need+=(make)
command -v g++           >/dev/null 2>&1 || need+=(g++)
# Verilator's FST tracing links zlib.
[ -f /usr/include/zlib.h ]               || need+=(zlib1g-dev)

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is not installed: install Rust from https://rustup.rs and run this again" >&2
  exit 1
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

echo "installing system packages: ${need[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "error: missing ${need[*]} and not root (no sudo): run 'apt-get install ${need[*]}' as root" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: missing ${need[*]} and apt-get is not available: install them with your package manager" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq "${need[@]}" >/dev/null; }; then
  echo "error: 'apt-get install ${need[*]}' failed: install them by hand (Debian/Ubuntu package names)" >&2
  exit 1
fi
echo "installed: $(verilator --version 2>/dev/null | head -1); $(yosys -V 2>/dev/null)"
