// swift-tools-version:6.0
// swift-process-memory: read and write the memory of other live Linux processes.
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "swift-process-memory",
    products: [
        .library(name: "ProcessMemory", targets: ["ProcessMemory"]),
        .library(name: "ProcessMemoryInterfaces", targets: ["ProcessMemoryInterfaces"]),
        .library(name: "ProcessMemorySymbols", targets: ["ProcessMemorySymbols"]),
        .executable(name: "procmem", targets: ["procmem"]),
        .executable(name: "procmem-fixture", targets: ["procmem-fixture"]),
        .executable(name: "procmem-faults", targets: ["procmem-faults"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // Thin C wrappers for the Linux calls Glibc does not import without _GNU_SOURCE. No logic.
        .target(name: "CProcessMemory"),
        .target(
            name: "ProcessMemory",
            dependencies: [
                "CProcessMemory",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strictSettings
        ),
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
            dependencies: ["ProcessMemory"],
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
            dependencies: ["CProcessMemory"],
            swiftSettings: strictSettings
        ),
        // The fault matrix (issue 6): races, lifecycle, limits; prints a summary table.
        .executableTarget(name: "procmem-faults", dependencies: ["ProcessMemory", "CProcessMemory"], swiftSettings: strictSettings),
        .testTarget(
            name: "ProcessMemoryTests",
            dependencies: [
                "ProcessMemory", "ProcessMemoryInterfaces", "ProcessMemorySymbols", "CProcessMemory",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strictSettings
        ),
        // Runs the built procmem and procmem-fixture binaries and checks output and exit codes.
        .testTarget(name: "ProcMemCLITests", dependencies: [], swiftSettings: strictSettings),
    ]
)
