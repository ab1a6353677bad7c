#!/usr/bin/env bash
# The main job on a default input: installs dependencies, builds, and runs imq on
# MODEL (default ../shared/models/dense-spm4k-f32.gguf).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
SHARED=${IMQ_SHARED:-../shared}
MODEL=${MODEL:-$SHARED/models/dense-spm4k-f32.gguf}
./build/imq info "$MODEL"
