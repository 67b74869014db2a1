/// An optional report field that `--json` writes as `null` when it is absent.
///
/// Synthesized `Encodable` leaves an absent optional's key out; the documented `--json` shapes keep
/// every key, with `null` for "none" (a read that completed has `"stop": null`). Marking such a
/// field `@NullWhenAbsent` lets a report use the synthesized encoder instead of writing
/// `encode(to:)` by hand only to call `encodeNil()`. Fields that appear only sometimes (`type`
/// and `values` of `read`) stay plain optionals.
@propertyWrapper
struct NullWhenAbsent<Value: Encodable>: Encodable {
    var wrappedValue: Value?

    init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}

extension NullWhenAbsent: Sendable where Value: Sendable {}
