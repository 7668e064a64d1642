#!/usr/bin/env bash
# Type-checks everything: the build graph (tsc -b over src/ of every package), then each
# package's tests, benchmarks and fixtures through its tsconfig.check.json (no emit).
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -b
for cfg in libs/*/tsconfig.check.json services/*/tsconfig.check.json k8s/tsconfig.check.json examples/tsconfig.json; do
  [ -f "$cfg" ] || continue
  echo "tsc -p $cfg"
  npx tsc -p "$cfg"
done
