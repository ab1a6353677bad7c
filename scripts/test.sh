#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole test suite (CTest + GoogleTest).
# Tests that need ../shared skip without it; IMQ_REQUIRE_SHARED=1 turns those skips into failures.
# The suite runs in the machine's own environment, then, where OPENBLAS_CORETYPE is not set
# already, a second time with the OpenBLAS settings some machines of this kind carry
# (OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=512: other SGEMM kernels), so that results which
# depend on the BLAS kernel (thread counts, micro-batches, parity) show on every machine.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j"$(nproc)"
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -z "${IMQ_SKIP_BLAS_PASS:-}" ]; then
  # The fuzz smoke run and the Slurm recipe use no BLAS: they run in the first pass only.
  echo "== second pass: OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=512 (without labels fuzz, slurm)"
  OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=512 \
    ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j"$(nproc)" -LE '^(fuzz|slurm)$'
fi
