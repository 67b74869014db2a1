#!/usr/bin/env bash
# Builds Examples/CoreSampler, a profiler-style program that imports only ProcessMemoryCore, and
# fails if the program itself links Foundation or Dispatch (its ELF NEEDED entries): the core must
# stay linkable without them (ARCHITECTURE.md). Then runs it once against this shell.
#
# ldd also lists libdispatch, as it does for every Swift program on Linux: the Swift concurrency
# runtime (libswift_Concurrency.so, linked into every Swift binary) depends on it. Only the
# program's own NEEDED entries say what the package's code brings in; procmem's, for contrast,
# name libFoundation and libdispatch.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product core-sampler >/dev/null 2>&1 || swift build --target core-sampler >/dev/null
binary="$(swift build --show-bin-path)/core-sampler"
echo "== readelf -d $binary (NEEDED)"
needed=$(readelf -d "$binary" | grep NEEDED)
echo "$needed"
if echo "$needed" | grep -Eiq 'Foundation|dispatch'; then
    echo "FAIL: a program on ProcessMemoryCore alone links Foundation or Dispatch" >&2
    exit 1
fi
"$binary" $$ 10
echo "core-sampler links neither Foundation nor Dispatch"
