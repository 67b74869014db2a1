// swift-tools-version:6.3
// 6.3, not 6.0: the tests' exit tests capture values ([pid = pid as Int32] in ...), which Swift Testing
// has only since Swift 6.3 (ST-0012).
// swift-process-memory: read and write the memory of other live Linux processes.
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// What every library test target uses: the fixture's C calls, its launcher and layout, the skip traits.
let testSupport: [Target.Dependency] = ["CProcessMemoryTestSupport", "ProcessMemoryTestSupport", "ProcessMemoryTestTraits"]

let package = Package(
    name: "swift-process-memory",
    products: [
        .library(name: "ProcessMemory", targets: ["ProcessMemory"]),
        .library(name: "ProcessMemoryCore", targets: ["ProcessMemoryCore"]),
        .library(name: "ProcessMemoryInterfaces", targets: ["ProcessMemoryInterfaces"]),
        .library(name: "ProcessMemorySymbols", targets: ["ProcessMemorySymbols"]),
        .executable(name: "procmem", targets: ["procmem"]),
        // procmem-fixture and procmem-faults are executable targets, not products: nothing outside
        // this package should depend on them. `swift build --product NAME` still builds them, since
        // SwiftPM gives each executable target of the root package a product of its own.
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // Thin C wrappers for the library's Linux calls that Glibc does not import without _GNU_SOURCE. No logic.
        .target(name: "CProcessMemory"),
        // The same kind of wrappers for calls only the fixture, the fault matrix and the tests make
        // (clone3 set_tid, memfd_secret, prctl, ...), kept out of the shim the library links.
        .target(name: "CProcessMemoryTestSupport"),
        // The core a sampling profiler links: system calls, handle, errors, maps, reads, batches,
        // writes. Glibc, Synchronization and SystemPackage only: no Foundation, no Dispatch.
        .target(
            name: "ProcessMemoryCore",
            dependencies: [
                "CProcessMemory",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strictSettings
        ),
        // Memory objects: memfds, seals, mapping and passing, the object behind a mapping.
        .target(name: "ProcessMemoryObjects", dependencies: ["ProcessMemoryCore"], swiftSettings: strictSettings),
        // Scans, rescans, match and snapshot files, pointer chains, watch and freeze.
        .target(name: "ProcessMemoryScanning", dependencies: ["ProcessMemoryCore"], swiftSettings: strictSettings),
        // Stopping a process, dumps, ELF cores, dump indexes, diffs.
        .target(name: "ProcessMemoryDumps", dependencies: ["ProcessMemoryCore"], swiftSettings: strictSettings),
        // The umbrella: `import ProcessMemory` gives every module above.
        .target(
            name: "ProcessMemory",
            dependencies: ["ProcessMemoryCore", "ProcessMemoryObjects", "ProcessMemoryScanning", "ProcessMemoryDumps"],
            swiftSettings: strictSettings
        ),
        // A profiler's sampling loop on the core alone; Scripts/check-core-links.sh checks with ldd
        // that it links neither Foundation nor Dispatch.
        .executableTarget(name: "core-sampler", dependencies: ["ProcessMemoryCore"], path: "Examples/CoreSampler",
                          swiftSettings: strictSettings),
        // The reference interfaces (Zircon, Mach, Win32) as Swift surfaces over the core library.
        .target(
            name: "ProcessMemoryInterfaces",
            dependencies: ["ProcessMemory"],
            swiftSettings: strictSettings
        ),
        // Symbols of mapped ELF modules (issue 13): a bounds-checked ELF reader, per-module tables,
        // a per-process symbolizer. No Foundation, no Dispatch.
        .target(
            name: "ProcessMemorySymbols",
            dependencies: ["ProcessMemoryCore"],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "procmem",
            dependencies: [
                "ProcessMemory", "ProcessMemorySymbols",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strictSettings
        ),
        // The process that tests, benchmarks and the README demo read: a known memory layout.
        .executableTarget(
            name: "procmem-fixture",
            dependencies: ["CProcessMemoryTestSupport"],
            swiftSettings: strictSettings
        ),
        // The fault matrix (issue 6): races, lifecycle, limits; prints a summary table.
        .executableTarget(
            name: "procmem-faults",
            dependencies: ["ProcessMemory", "ProcessMemoryTestSupport", "CProcessMemoryTestSupport"],
            swiftSettings: strictSettings
        ),
        // Not products. The fixture launcher and its Codable layout, for the tests and the fault matrix
        // (so no Testing here: an executable links it) ...
        .target(name: "ProcessMemoryTestSupport", swiftSettings: strictSettings),
        // ... and the traits that skip a test that cannot run here, for the test targets only.
        .target(name: "ProcessMemoryTestTraits", dependencies: ["CProcessMemoryTestSupport"], swiftSettings: strictSettings),
        // One test target per library module, each depending on its module and the ones below it
        // (plus the shared launcher and traits), so a module's tests build without the others.
        .testTarget(
            name: "ProcessMemoryCoreTests",
            dependencies: testSupport + ["ProcessMemoryCore", "CProcessMemory", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ProcessMemoryObjectsTests",
            dependencies: testSupport + ["ProcessMemoryCore", "ProcessMemoryObjects", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ProcessMemoryScanningTests",
            dependencies: testSupport + ["ProcessMemoryCore", "ProcessMemoryScanning", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ProcessMemoryDumpsTests",
            dependencies: testSupport + ["ProcessMemoryCore", "ProcessMemoryDumps", "CProcessMemory",
                                         .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ProcessMemorySymbolsTests",
            dependencies: testSupport + ["ProcessMemoryCore", "ProcessMemorySymbols"],
            swiftSettings: strictSettings
        ),
        // The five reference surfaces, and the conformance tests that quote their documents.
        .testTarget(
            name: "ProcessMemoryInterfacesTests",
            dependencies: testSupport + ["ProcessMemory", "ProcessMemoryInterfaces"],
            swiftSettings: strictSettings
        ),
        // Runs the built procmem and procmem-fixture binaries and checks output and exit codes; a
        // few pure formatting helpers of procmem are tested directly (@testable import procmem).
        .testTarget(
            name: "ProcMemCLITests",
            dependencies: ["ProcessMemoryTestSupport", "ProcessMemoryTestTraits", "procmem"],
            swiftSettings: strictSettings
        ),
    ]
)
