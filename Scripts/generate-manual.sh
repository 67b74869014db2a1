#!/usr/bin/env bash
# Regenerates man/procmem.1 from procmem's argument-parser definitions with swift-argument-parser's
# generate-manual plugin (no network: the plugin comes with the package's checkout of the parser).
# It builds the package in release mode first. Usage: Scripts/generate-manual.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cd "$root"
swift package --allow-writing-to-directory "$out" generate-manual --output-directory "$out" >&2
mkdir -p man
cp "$out/procmem.1" man/procmem.1
echo "wrote man/procmem.1 (read it with: man -l man/procmem.1)" >&2
