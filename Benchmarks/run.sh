#!/usr/bin/env bash
# Builds the fixture and the benchmark in release mode and runs every measurement.
# Usage: Benchmarks/run.sh [--size-mib N] [--repetitions N] [--only N] [--unknown-mib N] [--scanmem-limit S] [--many-mib N]
# Row 9 (the unknown-value search over --unknown-mib, default 1536 MiB) runs the release procmem as a
# user would and needs about three times that on disk in $TMPDIR. Row 10 (many matches: --many-mib,
# default 256 MiB, of int32 7s scanned and rescanned, and a session over 16 MiB) needs about 3 bytes
# of disk per byte scanned.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# Rows 5, 9 and 10 compare with scanmem 0.17 and row 6 with gcore (gdb): install them when missing.
missing=()
command -v scanmem >/dev/null || missing+=(scanmem)
command -v gcore >/dev/null || missing+=(gdb)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing ${missing[*]} with apt-get" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >&2 \
            || echo "could not install ${missing[*]}: their rows are left out" >&2
    else
        echo "${missing[*]} not installed (as root: apt-get install ${missing[*]}): their rows are left out" >&2
    fi
fi
(cd "$here/.." && swift build -c release --product procmem-fixture >&2)
(cd "$here/.." && swift build -c release --product procmem >&2)
fixture="$(cd "$here/.." && swift build -c release --show-bin-path)/procmem-fixture"
procmem="$(cd "$here/.." && swift build -c release --show-bin-path)/procmem"
(cd "$here" && swift build -c release --product procmem-bench >&2)
exec "$(cd "$here" && swift build -c release --show-bin-path)/procmem-bench" --fixture "$fixture" --procmem "$procmem" "$@"
