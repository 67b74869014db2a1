// The reference interfaces of the specification (../shared/seeds), each as a Swift namespace with
// its documented names, statuses and semantics, implemented on the ProcessMemory core.
import ProcessMemory
