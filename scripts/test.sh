#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole test suite (CTest + GoogleTest).
# Tests that need ../shared skip without it; IMQ_REQUIRE_SHARED=1 turns those skips into failures.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j"$(nproc)"
