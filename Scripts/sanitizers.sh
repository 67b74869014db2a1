#!/usr/bin/env bash
# Runs the whole test suite under AddressSanitizer and ThreadSanitizer, each in its own build folder.
# Usage: Scripts/sanitizers.sh [address|thread ...]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
# XCTest's own runner (libXCTest) keeps a few objects alive at exit; they are not ours.
suppressions=$(mktemp)
trap 'rm -f "$suppressions"' EXIT
echo 'leak:libXCTest.so' > "$suppressions"
export LSAN_OPTIONS="suppressions=$suppressions:print_suppressions=0"
# The fixture's usual fixed addresses lie in ThreadSanitizer's shadow memory: let the kernel choose.
export PROCMEM_FIXTURE_ARENA=kernel
status=0
for sanitizer in "${@:-address thread}"; do
    for s in $sanitizer; do
        echo "== swift test --sanitize=$s"
        swift build --build-tests --sanitize="$s" --scratch-path ".build-$s" 2>&1 | grep -E 'error|Compiling|Build complete' | tail -3
        if ! swift test --skip-build --sanitize="$s" --scratch-path ".build-$s"; then status=1; fi
    done
done
exit $status
