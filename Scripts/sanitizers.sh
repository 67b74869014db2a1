#!/usr/bin/env bash
# Runs the whole test suite under AddressSanitizer and ThreadSanitizer, each in its own build folder.
# Usage: Scripts/sanitizers.sh [address|thread ...]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
# XCTest's own runner (libXCTest) keeps a few objects alive at exit, and Foundation's Process.run
# forms a weak reference whose 32-byte side table outlives it; neither is ours.
suppressions=$(mktemp)
trap 'rm -f "$suppressions"' EXIT
printf '%s\n' 'leak:libXCTest.so' 'leak:Foundation7ProcessC3runyyKF' > "$suppressions"
export LSAN_OPTIONS="suppressions=$suppressions:print_suppressions=0"
# The fixture is the target process, not the code under test: run an uninstrumented build of it.
# An instrumented one would carry the sanitizer's terabytes of shadow mappings into every dump and
# core the tests take, and ThreadSanitizer's shadow covers the fixture's usual fixed addresses.
swift build --product procmem-fixture 2>&1 | grep -E 'error|Build' | tail -2
export PROCMEM_FIXTURE_EXECUTABLE="$(swift build --show-bin-path)/procmem-fixture"
status=0
for sanitizer in "${@:-address thread}"; do
    for s in $sanitizer; do
        echo "== swift test --sanitize=$s"
        swift build --build-tests --sanitize="$s" --scratch-path ".build-$s" 2>&1 | grep -E 'error|Compiling|Build complete' | tail -3
        if ! swift test --skip-build --sanitize="$s" --scratch-path ".build-$s"; then status=1; fi
    done
done
exit $status
