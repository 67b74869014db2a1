#!/usr/bin/env bash
# Runs procmem against a live process: the package's fixture, whose memory layout is known.
# Usage: Scripts/demo.sh   (after `swift build`; uses .build/debug unless BIN is set)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$(swift build --show-bin-path)}
procmem="$BIN/procmem"

# Start the fixture with its stdin on a pipe we hold, so it lives until we close it.
coproc FIXTURE { exec "$BIN/procmem-fixture"; }
trap 'echo exit >&"${FIXTURE[1]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
read -r layout <&"${FIXTURE[0]}"
field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); v=d
for k in sys.argv[2].split("."): v=v[k]
print(hex(v) if isinstance(v,int) else v)' "$layout" "$1"; }
pid=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["pid"])' "$layout")

run() { printf '\n$ procmem %s\n' "$*"; "$procmem" "$@" || printf '(exit code %d)\n' "$?"; }
run info "$pid"
run maps "$pid" | head -16
run read "$pid" "$(field values.u32.address)" 1 --as u32 --hex
run read "$pid" "$(field values.cstring.address)" --as cstring
run read "$pid" "$(field regions.pattern.address)" 64
# The hole region is 3 pages with the middle one unmapped: the read stops exactly at it.
run read "$pid" "$(field regions.hole.address)+0xff0" 64
run write "$pid" "$(field values.u32.address)" --value 1234 --as u32
run read "$pid" "$(field values.u32.address)" 1 --as u32
