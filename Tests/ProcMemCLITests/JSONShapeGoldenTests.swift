import Foundation
import ProcessMemoryTestSupport
import Testing

/// Any JSON value, decoded strictly: a number is never read as a bool, an integer is kept apart
/// from a fraction.
enum JSONValue: Decodable {
    case null, bool(Bool), int, number, string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null; return }
        if let value = try? container.decode(Bool.self) { self = .bool(value); return }
        if (try? container.decode(Int64.self)) != nil || (try? container.decode(UInt64.self)) != nil { self = .int; return }
        if (try? container.decode(Double.self)) != nil { self = .number; return }
        if let value = try? container.decode(String.self) { self = .string(value); return }
        if let value = try? container.decode([JSONValue].self) { self = .array(value); return }
        self = .object(try container.decode([String: JSONValue].self))
    }

    /// The value's shape: key names (sorted), nesting and value types, with `0x…` strings as `hex`.
    /// The elements of an array are merged: a key's shapes across elements are joined with `|`.
    var shape: String {
        switch self {
        case .null: return "null"
        case .bool: return "bool"
        case .int: return "int"
        case .number: return "number"
        case .string(let text):
            let isHex = text.hasPrefix("0x") && text.count > 2 && text.dropFirst(2).allSatisfy { $0.isHexDigit && !$0.isUppercase }
            return isHex ? "hex" : "string"
        case .object(let fields):
            return "{" + fields.keys.sorted().map { "\($0):\(fields[$0]?.shape ?? "")" }.joined(separator: ",") + "}"
        case .array(let elements):
            let objects = elements.compactMap { element -> [String: JSONValue]? in
                if case .object(let fields) = element { return fields }
                return nil
            }
            if !objects.isEmpty && objects.count == elements.count {
                let keys = Set(objects.flatMap(\.keys)).sorted()
                let merged = keys.map { key in
                    let shapes = Set(objects.map { $0[key]?.shape ?? "absent" })
                    return key + ":" + shapes.sorted().joined(separator: "|")
                }
                return "[{" + merged.joined(separator: ",") + "}]"
            }
            return "[" + Set(elements.map(\.shape)).sorted().joined(separator: "|") + "]"
        }
    }
}

/// The `--json` shapes of today's commands, captured against the fixture before the output moved to
/// `Encodable` types, so that the move can be shown not to change them.
@Suite("procmem --json shapes (goldens)")
struct JSONShapeGoldenTests {
    static func shape(_ result: RunResult, _ command: String) throws -> String {
        #expect(result.status == 0, "\(command): \(result.stderr)")
        return try JSONDecoder().decode(JSONValue.self, from: Data(result.stdout)).shape
    }

    static func scratch(_ name: String) -> String {
        NSTemporaryDirectory() + "procmem-golden-\(name)-\(UUID().uuidString)"
    }

    @Test("every command's --json keeps its documented shape")
    func goldens() throws {
        try withFixture { fixture in
            let pattern = try fixture.layout.region("pattern")
            let u32 = try fixture.layout.value("u32")
            let memfd = try fixture.layout.region("memfd")
            let a = try fixture.mapPage()
            let b = try fixture.mapPage()
            try fixture.storePointer(b, at: a + 0x10)
            try fixture.storePointer(u32 - 4, at: b + 0x8)
            let matches = Self.scratch("matches")
            let first = Self.scratch("dump-a")
            let second = Self.scratch("dump-b")
            let table = Self.scratch("table")
            try "[[entry]]\nname = \"value\"\naddress = \"\(hex(u32))\"\ntype = \"u32\"\nfreeze = \"3735928559\"\n"
                .write(toFile: table, atomically: false, encoding: .utf8)
            defer {
                unlink(table)
                for suffix in ["", ".1", ".redo.1"] { unlink(matches + suffix) }
                try? FileManager.default.removeItem(atPath: first)
                try? FileManager.default.removeItem(atPath: second)
            }
            let runs: [(String, [String])] = [
                ("maps", ["maps", fixture.pidArgument, "--json"]),
                ("maps --details", ["maps", fixture.pidArgument, "--details", "--json"]),
                ("info", ["info", fixture.pidArgument, "--json"]),
                ("read bytes", ["read", fixture.pidArgument, hex(pattern.address), "16", "--json"]),
                ("read --as", ["read", fixture.pidArgument, hex(u32), "--as", "u32", "--json"]),
                ("read cstring", ["read", fixture.pidArgument, hex(try fixture.layout.value("cstring")), "--as", "cstring", "--json"]),
                ("write", ["write", fixture.pidArgument, hex(u32), "--value", "3735928559", "--as", "u32", "--json"]),
                ("pointer resolve", ["pointer", "resolve", fixture.pidArgument, "\(hex(a))+0x10 -> +0x8 -> +4", "--as", "u32", "--json"]),
                ("scan", ["scan", fixture.pidArgument, "0x5EED1234", "--as", "u32", "--save", matches, "--json"]),
                ("rescan", ["rescan", matches, "--unchanged", "--no-save", "--json"]),
                ("rescan saved", ["rescan", matches, "--unchanged", "--json"]),
                ("undo", ["undo", matches, "--json"]),
                ("redo", ["redo", matches, "--json"]),
                ("session", ["session", fixture.pidArgument, "--as", "u32", "--json", "-c", "0x5EED1234"]),
                ("table apply", ["table", "apply", fixture.pidArgument, table, "--json"]),
                ("object info", ["object", "info", fixture.pidArgument, hex(memfd.address), "--json"]),
                ("object create", ["object", "create", "procmem-golden", "16", "--json"]),
                ("dump", ["dump", fixture.pidArgument, "--output", first, "--json"]),
                // A value changes between the dumps, so `changed` is never empty.
                ("write between dumps", ["write", fixture.pidArgument, hex(u32), "--value", "0x11223344", "--as", "u32", "--json"]),
                ("dump again", ["dump", fixture.pidArgument, "--output", second, "--json"]),
                ("diff", ["diff", first, second, "--json"]),
            ]
            for (name, arguments) in runs {
                let shape = try Self.shape(try procmem(arguments), name)
                if let golden = Self.goldens[name] ?? Self.goldens[name.replacingOccurrences(of: " between dumps", with: "").replacingOccurrences(of: " again", with: "")] {
                    #expect(shape == golden, "\(name): the --json shape changed:\n\(shape)")
                } else {
                    Issue.record("no golden for \(name):\n(\"\(name)\", \"\(shape.replacingOccurrences(of: "\"", with: "\\\""))\"),")
                }
            }
        }
    }

    /// Captured from the hand-written JSON (Support/JSON.swift) before the switch to `Encodable`;
    /// `info`'s "threads" and "residentBytes" and `maps --details`'s "dirty" were added on purpose,
    /// as each command's help says.
    static let goldens: [String: String] = [
        // Written from `procmem read --help`, not captured: the cstring form was converted with the rest.
        "read cstring": "{address:hex,maxLength:int,pid:int,stop:null,type:string,value:string}",
        "maps": "[{deleted:bool,dev:string,end:hex,endValue:int,inode:int,kind:string,offset:int,path:null|string,perms:string,shared:bool,size:int,start:hex,startValue:int}]",
        "maps --details": "[{deleted:bool,dev:string,dirty:int,end:hex,endValue:int,inode:int,kind:string,offset:int,path:null|string,perms:string,pss:int,rss:int,shared:bool,size:int,start:hex,startValue:int,swap:int,vmFlags:[string]}]",
        "info": "{commandLine:[string],effectiveUid:int,executable:string,name:string,pid:int,readableBytes:int,regions:int,residentBytes:int,state:string,threads:int,uid:int}",
        "read bytes": "{address:hex,complete:bool,hex:string,pid:int,read:int,requested:int,stop:null}",
        "read --as": "{address:hex,complete:bool,hex:string,pid:int,read:int,requested:int,stop:null,symbols:[null],type:string,values:[int]}",
        "write": "{address:hex,complete:bool,pid:int,requested:int,stop:null,written:int}",
        "pointer resolve": "{address:hex,base:hex,chain:string,failure:null,hops:[{address:hex,hop:int,next:hex,offset:int,pointer:hex}],pid:int,type:string,value:int,valueError:null}",
        "scan": "{bytesNotResident:int,bytesScanned:int,content:string,elapsedSeconds:number,interrupted:bool,matchCount:int,matches:[{address:hex,region:{end:hex,path:null,perms:string,start:hex},value:int,width:int}],partial:bool,pid:int,query:string,regionsScanned:int,reported:int,saved:string,skipped:[{end:hex,path:null,reason:{accessDenial:null,address:hex,bytesTransferred:int,code:string,description:string,errno:null,exitCode:int,message:string,pid:int,systemCall:string},start:hex}],truncated:bool}",
        "rescan": "{bytesNotResident:int,bytesScanned:int,content:string,elapsedSeconds:number,interrupted:bool,matchCount:int,matches:[{address:hex,region:{end:hex,path:null,perms:string,start:hex},value:int,width:int}],partial:bool,pid:int,query:string,regionsScanned:int,reported:int,saved:null,skipped:[],truncated:bool}",
"rescan saved": "{bytesNotResident:int,bytesScanned:int,content:string,elapsedSeconds:number,interrupted:bool,matchCount:int,matches:[{address:hex,region:{end:hex,path:null,perms:string,start:hex},value:int,width:int}],partial:bool,pid:int,query:string,regionsScanned:int,reported:int,saved:string,skipped:[],truncated:bool}",
        // Added with the commands (undo, redo, session --json, table apply --json), as their help describes.
        "undo": "{earlierGenerations:int,file:string,redoable:int}",
        "redo": "{earlierGenerations:int,file:string,redoable:int}",
        "session": "{command:string,errors:[],jobs:int,matchCount:int,matches:[{address:hex,index:int,type:string,value:int}],ok:bool,output:[string],partial:bool,state:string,type:string}",
        "table apply": "{entries:[{address:hex,error:null,name:string,old:int,value:int}]}",
        "object info": "{address:hex,device:string,inode:int,kind:string,name:string,objectOffset:int,path:string,pid:int,region:{end:hex,offset:int,perms:string,shared:bool,start:hex},rights:string,seals:[string],size:int,source:string}",
        "object create": "{fd:int,inode:int,name:string,path:string,pid:int,seals:[],size:int}",
        "dump": "{bytesDumped:int,bytesExcluded:int,bytesFailed:int,complete:bool,coredumpFilter:null,failedRanges:int,index:string,output:string,partialReason:null,pid:int,regions:int}",
        "diff": "{bytesCompared:int,changed:[{end:hex,size:int,start:hex}],onlyInA:[],onlyInB:[]}",
    ]
}
