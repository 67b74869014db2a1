import ProcessMemoryCore

/// Separate debug files, found the way gdb finds them (gdb manual, "Debugging Information in
/// Separate Files"): by build ID under each debug directory, `.build-id/xx/rest.debug`; else by
/// the `.gnu_debuglink` name next to the module, in its `.debug/` folder, and under each debug
/// directory followed by the module's directory, with the link's CRC-32 checked.
enum DebugFiles {
    struct Found {
        var path: String
        /// The debug file's `.symtab`, collected for the module's table.
        var symbols: SymbolTable.Builder
    }

    /// The paths tried for `buildID` (in order).
    static func buildIDPaths(_ buildID: [UInt8], directories: [String]) -> [String] {
        guard buildID.count >= 2 else { return [] }
        let hex = hexString(buildID)
        let head = String(hex.prefix(2))
        let rest = String(hex.dropFirst(2))
        return directories.map { "\($0)/.build-id/\(head)/\(rest).debug" }
    }

    /// The paths tried for a debuglink `name` of the module at `modulePath` (in order).
    static func debugLinkPaths(_ name: String, modulePath: String?, directories: [String]) -> [String] {
        guard let modulePath, let slash = modulePath.lastIndex(of: "/") else { return [] }
        let directory = String(modulePath[..<slash])
        return ["\(directory)/\(name)", "\(directory)/.debug/\(name)"] + directories.map { "\($0)\(directory)/\(name)" }
    }

    static func find(for image: ELFImage, buildID: [UInt8]?, modulePath: String?, options: SymbolizerOptions,
                     notes: inout [String]) -> Found? {
        if let buildID {
            for path in buildIDPaths(buildID, directories: options.debugDirectories) where LocalFiles.isRegularFile(path) {
                // Found by build ID, so no CRC: only the parts with symbols are read.
                guard case .success(.success(let loaded)) = LocalFiles.withFile(path, limit: options.maximumFileSize, ModuleLoader.read) else { continue }
                do {
                    let debug: ELFImage
                    switch loaded {
                    case .image(let image): debug = image
                    case .bytes(let bytes): debug = try ELFImage(bytes: bytes)
                    }
                    guard try debug.buildID() == buildID else {
                        notes.append("\(path): its build ID differs; not used")
                        continue
                    }
                    return Found(path: path, symbols: try debugSymbols(debug))
                } catch {
                    notes.append("\(path): \(error); not used")
                }
            }
        }
        guard let link = try? image.debugLink() else { return nil }
        for path in debugLinkPaths(link.fileName, modulePath: modulePath, directories: options.debugDirectories)
            where LocalFiles.isRegularFile(path) {
            guard case .success(let bytes) = LocalFiles.read(path, limit: options.maximumFileSize) else { continue }
            let crc = CRC32.checksum(bytes)
            guard crc == link.crc else {
                notes.append("\(path): CRC 0x\(String(crc, radix: 16)) is not the debuglink's 0x\(String(link.crc, radix: 16)); not used")
                continue
            }
            do {
                return Found(path: path, symbols: try debugSymbols(try ELFImage(bytes: bytes)))
            } catch {
                notes.append("\(path): \(error); not used")
            }
        }
        return nil
    }

    /// A debug file's `.symtab` only: its `.dynsym`, if any, repeats the module's.
    static func debugSymbols(_ image: ELFImage) throws(ELFError) -> SymbolTable.Builder {
        var builder = SymbolTable.Builder()
        try builder.add(image, symtabSource: .debugFile, symtabOnly: true)
        return builder
    }
}
