
// The fixture launcher and its layout live in Sources/ProcessMemoryTestSupport, shared with the CLI
// tests and the fault matrix; the traits that skip a test in Sources/ProcessMemoryTestTraits.

/// A running `procmem-fixture` (the tests' name for the shared launcher).
public typealias Fixture = FixtureProcess
