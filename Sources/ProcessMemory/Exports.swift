// The umbrella module: `import ProcessMemory` keeps giving the whole library, as before the split
// into modules by capability (ARCHITECTURE.md). A sampling profiler that needs only handles, reads
// and batches imports `ProcessMemoryCore` and links nothing else.
@_exported import ProcessMemoryCore
@_exported import ProcessMemoryDumps
@_exported import ProcessMemoryObjects
@_exported import ProcessMemoryScanning
