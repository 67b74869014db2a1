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
# The harnesses compile the pure parsers straight from the sources, as one module named ProcessMemory,
# with their own imports; only the imports of the package's own modules go, since those modules are
# compiled here as one (the CLI's `import ProcessMemory` is then its own module: swiftc ignores it).
# SystemPackage, which ProcessMemoryError imports for Errno, is the package's own release build of
# swift-system: its module and objects are linked in, uninstrumented.
if ! swift build -c release --target SystemPackage >"$out/build-system.log" 2>&1; then
    tail -30 "$out/build-system.log"
    exit 1
fi
bin=$(swift build -c release --show-bin-path)
system=(-I "$bin/Modules" -Xcc -fmodule-map-file="$bin/../../checkouts/swift-system/Sources/CSystem/include/module.modulemap"
        "$bin"/SystemPackage.build/*.o "$bin"/CSystem.build/*.o)
parsers=(Sources/ProcessMemoryCore/Map/MapsParser.swift Sources/ProcessMemoryCore/Map/MemoryRegion.swift
         Sources/ProcessMemoryCore/Map/MemoryMap.swift Sources/ProcessMemoryCore/Map/RegionDetails.swift
         Sources/ProcessMemoryCore/Handle/ProcFiles.swift)
build() { # name, harness, sources...
    local name=$1; shift
    local sources=() file copy
    mkdir -p "$out/src/$name"
    for file in "$@"; do
        copy="$out/src/$name/$(basename "$file")"
        sed -E '/^import ProcessMemory(Core|Objects|Scanning|Dumps)$/d' "$file" > "$copy"
        sources+=("$copy")
    done
    if ! swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name ProcessMemory -package-name swift_process_memory \
            -o "$out/$name" "${sources[@]}" "${system[@]}" \
            >"$out/build-$name.log" 2>&1; then
        grep -v 'ld.gold: warning' "$out/build-$name.log" | tail -30
        exit 1
    fi
}
build maps-parser Fuzz/MapsParserFuzz.swift "${parsers[@]}"
build address-expression Fuzz/AddressExpressionFuzz.swift "${parsers[@]}" Sources/ProcessMemoryCore/Map/AddressExpression.swift
scan=(Sources/ProcessMemoryCore/Values/ValueType.swift Sources/ProcessMemoryCore/Map/AddressExpression.swift
      Sources/ProcessMemoryScanning/Scanning/ScanValue.swift Sources/ProcessMemoryScanning/Scanning/BytePattern.swift
      Sources/ProcessMemoryScanning/Scanning/MatchSet.swift Sources/ProcessMemoryScanning/Scanning/MatchFileFormat.swift
      Sources/ProcessMemoryScanning/Scanning/SnapshotFileFormat.swift)
build scan-parsers Fuzz/ScanParsersFuzz.swift "${parsers[@]}" "${scan[@]}"
build dump-index Fuzz/DumpIndexFuzz.swift "${parsers[@]}" Sources/ProcessMemoryCore/Errors/ProcessMemoryError.swift \
    Sources/ProcessMemoryCore/Errors/SystemCall.swift Sources/ProcessMemoryCore/Errors/AccessDenialReason.swift \
    Sources/ProcessMemoryCore/Reads/ReadMode.swift Sources/ProcessMemoryCore/Handle/AccessRights.swift \
    Sources/ProcessMemoryDumps/StopMethod.swift Sources/ProcessMemoryDumps/DumpSelection.swift Sources/ProcessMemoryDumps/DumpIndex.swift
# Cheat tables (procmem table, a session's save): the text format's reader and writer.
build cheat-table Fuzz/CheatTableFuzz.swift "${parsers[@]}" Sources/ProcessMemoryCore/Values/ValueType.swift \
    Sources/ProcessMemoryCore/Map/AddressExpression.swift Sources/ProcessMemoryScanning/Tables/CheatTable.swift \
    Sources/ProcessMemoryScanning/Tables/CheatTableParser.swift
# The ELF reader and the symbol table: pure Swift without imports (Sources/ProcessMemorySymbols).
build elf-reader Fuzz/ElfReaderFuzz.swift Sources/ProcessMemorySymbols/ELF/*.swift Sources/ProcessMemorySymbols/SymbolTable.swift Sources/ProcessMemorySymbols/SymbolTableBuilder.swift
# Seed the corpora with real input from this machine.
mkdir -p "$out/corpus/maps-parser" "$out/corpus/address-expression"
cp /proc/self/maps "$out/corpus/maps-parser/seed-maps" 2>/dev/null || true
head -c 4000 /proc/self/smaps > "$out/corpus/maps-parser/seed-smaps" 2>/dev/null || true
for seed in '[heap]+0x10' 'libc.so.6+0x1000' '0x7f0000000000' '4096' 'lib-foo-2' '[stack]-0x8' 'game+0x4078 -> +0x18 -> +0x0' 'libc.so.6!malloc+0x10'; do
    printf '%s' "$seed" > "$out/corpus/address-expression/seed-$(printf '%s' "$seed" | md5sum | cut -c1-8)"
done
mkdir -p "$out/corpus/scan-parsers"
for seed in '0x5EED1234' '-5' '3.25' '48 8b ?? 4? ?5' '488b??05' '1e10' 'inf'; do
    printf '%s' "$seed" > "$out/corpus/scan-parsers/seed-$(printf '%s' "$seed" | md5sum | cut -c1-8)"
done
mkdir -p "$out/corpus/cheat-table"
cp Fuzz/seeds/cheat-table/* "$out/corpus/cheat-table/"
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
for name in ${FUZZ_ONLY:-maps-parser address-expression scan-parsers dump-index elf-reader cheat-table}; do
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
