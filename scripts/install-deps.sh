#!/usr/bin/env bash
# Installs imq's build dependencies (Debian 12 packages). Skips apt when all are present.
set -euo pipefail
pkgs=(cmake g++ make pkg-config libgtest-dev libgmock-dev libbenchmark-dev libopenblas-dev
      libhwy-dev libcli11-dev libfmt-dev nlohmann-json3-dev libpcre2-dev python3 chromium
      pybind11-dev python3-dev python3-numpy
      clang-14 libclang-rt-14-dev   # bench/fuzz.sh (libFuzzer, ASan, UBSan)
      slurmctld slurmd slurm-client)  # the Distributed.SlurmRecipe test's one-node cluster
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
fi
