// swift-tools-version:6.3
// 6.3 like the package it measures (../Package.swift), which needs it for its tests.
// Benchmarks for swift-process-memory: our API and a raw C baseline doing the same work against the
// same fixture process, in one run. Run with ./run.sh from this folder (it builds the fixture first).
import PackageDescription

let package = Package(
    name: "swift-process-memory-benchmarks",
    dependencies: [
        .package(name: "swift-process-memory", path: "../"),
    ],
    targets: [
        // The raw system calls, written the way a C programmer would, as the baseline.
        .target(name: "CBaseline"),
        .executableTarget(
            name: "procmem-bench",
            dependencies: [
                "CBaseline",
                .product(name: "ProcessMemory", package: "swift-process-memory"),
                .product(name: "ProcessMemorySymbols", package: "swift-process-memory"),
            ],
            swiftSettings: [.unsafeFlags(["-Ounchecked"])]
        ),
    ]
)
