/// The extra facts `/proc/PID/smaps` gives for one region; sizes in bytes.
public struct RegionDetails: Sendable, Hashable, Codable {
    /// The region itself.
    public var region: MemoryRegion
    /// Resident set size.
    public var rss: UInt64 = 0
    /// Proportional set size.
    public var pss: UInt64 = 0
    /// Private dirty bytes.
    public var privateDirty: UInt64 = 0
    /// Swapped-out bytes.
    public var swap: UInt64 = 0
    /// Anonymous bytes.
    public var anonymous: UInt64 = 0
    /// Bytes backed by transparent huge pages.
    public var anonHugePages: UInt64 = 0
    /// The kernel's two-letter `VmFlags` (`rd`, `wr`, `gd`, `dd`, …).
    public var vmFlags: [String] = []
    /// Every `Key: N kB` field, in bytes, as the kernel printed it.
    public var fields: [String: UInt64] = [:]

    /// Dirty bytes, private and shared (`Private_Dirty` plus `Shared_Dirty`): what `pmap -x` shows
    /// as Dirty, the memory the process has written since it was mapped or last written back.
    public var dirty: UInt64 { privateDirty &+ (fields["Shared_Dirty"] ?? 0) }
}

/// A pure parser for `/proc/PID/smaps`.
enum SmapsParser {
    static func parse(_ bytes: [UInt8]) -> [RegionDetails] {
        var result: [RegionDetails] = []
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            if let region = MapsParser.parseLine(line) {
                result.append(RegionDetails(region: region))
                continue
            }
            guard !result.isEmpty else { continue }
            let text = String(decoding: line, as: UTF8.self)
            guard let colon = text.firstIndex(of: ":") else { continue }
            let key = String(text[..<colon])
            let values = text[text.index(after: colon)...].split(separator: " ")
            if key == "VmFlags" {
                result[result.count - 1].vmFlags = values.map(String.init)
                continue
            }
            guard let first = values.first, let number = UInt64(first) else { continue }
            let bytes = values.count > 1 && values[1] == "kB" ? number &* 1024 : number
            result[result.count - 1].fields[key] = bytes
            switch key {
            case "Rss": result[result.count - 1].rss = bytes
            case "Pss": result[result.count - 1].pss = bytes
            case "Private_Dirty": result[result.count - 1].privateDirty = bytes
            case "Swap": result[result.count - 1].swap = bytes
            case "Anonymous": result[result.count - 1].anonymous = bytes
            case "AnonHugePages": result[result.count - 1].anonHugePages = bytes
            default: break
            }
        }
        return result
    }
}
