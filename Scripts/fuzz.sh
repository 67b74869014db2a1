#!/usr/bin/env bash
# Builds each libFuzzer harness in Fuzz/ with -sanitize=fuzzer,address and runs it.
# Usage: Scripts/fuzz.sh [SECONDS_PER_HARNESS=30] [extra libFuzzer flags, e.g. -runs=10000000]
#        FUZZ_ONLY="maps-parser dump-index" Scripts/fuzz.sh ...   runs only those harnesses
# The corpus of each harness is kept in .build-fuzz/corpus/NAME (git-ignored); crashes land in
# .build-fuzz/crash-* and make the script fail.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
out=.build-fuzz
mkdir -p "$out/src"
# The harnesses compile the pure parsers straight from the sources, as one module.
sed '/^import ProcessMemory$/d' Sources/procmem/Support/AddressExpression.swift > "$out/src/AddressExpression.swift"
parsers=(Sources/ProcessMemory/Map/MapsParser.swift Sources/ProcessMemory/Map/MemoryRegion.swift
         Sources/ProcessMemory/Map/MemoryMap.swift Sources/ProcessMemory/Map/RegionDetails.swift
         Sources/ProcessMemory/Handle/ProcFiles.swift)
build() { # name, harness, sources...
    local name=$1; shift
    if ! swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name ProcessMemory -o "$out/$name" "$@" \
            >"$out/build-$name.log" 2>&1; then
        grep -v 'ld.gold: warning' "$out/build-$name.log" | tail -30
        exit 1
    fi
}
build maps-parser Fuzz/MapsParserFuzz.swift "${parsers[@]}"
build address-expression Fuzz/AddressExpressionFuzz.swift "${parsers[@]}" "$out/src/AddressExpression.swift" \
    Sources/procmem/Support/Format.swift
scan=(Sources/ProcessMemory/Scanning/ScanValue.swift Sources/ProcessMemory/Scanning/BytePattern.swift
      Sources/ProcessMemory/Scanning/MatchSet.swift Sources/ProcessMemory/Scanning/MatchFileFormat.swift
      Sources/ProcessMemory/Scanning/SnapshotFileFormat.swift)
build scan-parsers Fuzz/ScanParsersFuzz.swift "${parsers[@]}" "${scan[@]}"
# The dump-index reader: ProcessMemoryError only stores an Errno, so a stand-in replaces swift-system.
sed '/^import SystemPackage$/d' Sources/ProcessMemory/Errors/ProcessMemoryError.swift > "$out/src/ProcessMemoryError.swift"
build dump-index Fuzz/DumpIndexFuzz.swift Fuzz/Support/ErrnoStub.swift "${parsers[@]}" "$out/src/ProcessMemoryError.swift" \
    Sources/ProcessMemory/Errors/AccessDenialReason.swift Sources/ProcessMemory/Reads/ReadMode.swift Sources/ProcessMemory/Handle/AccessRights.swift \
    Sources/ProcessMemory/Dumps/StopMethod.swift Sources/ProcessMemory/Dumps/DumpSelection.swift Sources/ProcessMemory/Dumps/DumpIndex.swift
# The ELF reader and the symbol table: pure Swift without imports (Sources/ProcessMemorySymbols).
build elf-reader Fuzz/ElfReaderFuzz.swift Sources/ProcessMemorySymbols/ELF/*.swift Sources/ProcessMemorySymbols/SymbolTable.swift
# Seed the corpora with real input from this machine.
mkdir -p "$out/corpus/maps-parser" "$out/corpus/address-expression"
cp /proc/self/maps "$out/corpus/maps-parser/seed-maps" 2>/dev/null || true
head -c 4000 /proc/self/smaps > "$out/corpus/maps-parser/seed-smaps" 2>/dev/null || true
for seed in '[heap]+0x10' 'libc.so.6+0x1000' '0x7f0000000000' '4096' 'lib-foo-2' '[stack]-0x8'; do
    printf '%s' "$seed" > "$out/corpus/address-expression/seed-$(printf '%s' "$seed" | md5sum | cut -c1-8)"
done
mkdir -p "$out/corpus/scan-parsers"
for seed in '0x5EED1234' '-5' '3.25' '48 8b ?? 4? ?5' '488b??05' '1e10' 'inf'; do
    printf '%s' "$seed" > "$out/corpus/scan-parsers/seed-$(printf '%s' "$seed" | md5sum | cut -c1-8)"
done
mkdir -p "$out/corpus/dump-index"
cp Fuzz/seeds/dump-index/* "$out/corpus/dump-index/"
# ELF32/ELF64 objects in both byte orders, a vDSO image and a stripped executable with a debuglink.
mkdir -p "$out/corpus/elf-reader"
cp Fuzz/seeds/elf-reader/* "$out/corpus/elf-reader/"
# Inputs that once failed stay in the corpora, so every run replays them first.
for dir in Fuzz/regressions/*/; do
    [ -d "$dir" ] || continue
    name=$(basename "$dir")
    mkdir -p "$out/corpus/$name"
    cp "$dir"* "$out/corpus/$name/"
done
status=0
for name in ${FUZZ_ONLY:-maps-parser address-expression scan-parsers dump-index elf-reader}; do
    mkdir -p "$out/corpus/$name"
    echo "== fuzz $name for ${seconds}s"
    dict=()
    if [ -f "Fuzz/$name.dict" ]; then dict=(-dict="Fuzz/$name.dict"); fi
    if ! "$out/$name" "$out/corpus/$name" -max_total_time="$seconds" -artifact_prefix="$out/crash-$name-" \
            -print_final_stats=1 "${dict[@]}" "$@" 2>"$out/$name.log"; then
        status=1
        tail -40 "$out/$name.log"
    fi
    grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$out/$name.log" | tail -2 || true
done
exit $status
