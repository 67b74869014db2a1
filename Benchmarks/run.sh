#!/usr/bin/env bash
# Builds the fixture and the benchmark in release mode and runs every measurement.
# Usage: Benchmarks/run.sh [--size-mib N] [--repetitions N]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
(cd "$here/.." && swift build -c release --product procmem-fixture >&2)
fixture="$(cd "$here/.." && swift build -c release --show-bin-path)/procmem-fixture"
(cd "$here" && swift build -c release --product procmem-bench >&2)
exec "$(cd "$here" && swift build -c release --show-bin-path)/procmem-bench" --fixture "$fixture" "$@"
