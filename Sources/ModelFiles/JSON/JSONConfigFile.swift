import Foundation

/// A config file's top-level JSON object (Hugging Face's `config.json`, `tokenizer_config.json`, …),
/// its fields looked up by name. Every problem is one message that names the file and the field and
/// tells a missing field from a wrong one: `config.json: field "n_embd" must be a positive integer,
/// found 2.5`.
package struct JSONConfigFile {
    package let path: String
    package let fields: [String: JSONNode]

    /// - Throws: `JSONConfigError` when `data` is not JSON or not an object.
    package init(data: Data, path: String) throws {
        self.path = path
        let root: JSONNode
        do { root = try JSONScanner().scan(data) } catch {
            throw JSONConfigError("\(path) is not valid JSON: \(error.description)")
        }
        guard let members = root.members else { throw JSONConfigError("\(path) must hold a JSON object, found \(root.kind)") }
        // Keys are unique as bytes (the scanner refuses repeats); keys equal as Strings keep the last.
        fields = Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    /// Reads the file at `url`. - Throws: `JSONConfigError` naming the file when it is missing or unreadable.
    package init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            if !FileManager.default.fileExists(atPath: url.path) { throw JSONConfigError("\(url.path) does not exist") }
            throw JSONConfigError("\(url.path): cannot read the file: \(error.localizedDescription)")
        }
        try self.init(data: data, path: url.path)
    }

    package subscript(key: String) -> JSONNode? { fields[key] }

    /// The field is absent or `null`.
    package func isAbsent(_ key: String) -> Bool { fields[key].map { if case .null = $0.value { true } else { false } } ?? true }

    package func wrong(_ key: String, _ what: String) -> JSONConfigError {
        JSONConfigError("\(path): field \"\(key)\" must be \(what), found \(fields[key].map(\.brief) ?? "nothing")")
    }

    package func positiveInt(_ key: String) throws -> Int {
        guard fields[key] != nil else { throw JSONConfigError("\(path): field \"\(key)\" is missing") }
        guard let i = fields[key]?.integer, i > 0 else { throw wrong(key, "a positive integer") }
        return i
    }

    /// A positive integer, or nil when the field is absent or null.
    package func optionalPositiveInt(_ key: String, orNull: Bool = true) throws -> Int? {
        if isAbsent(key) { return nil }
        guard let i = fields[key]?.integer, i > 0 else { throw wrong(key, "a positive integer" + (orNull ? " or null" : "")) }
        return i
    }

    /// A positive finite number (as a Float), or nil when the field is absent.
    package func positiveFloat(_ key: String) throws -> Float? {
        guard let v = fields[key] else { return nil }
        guard let x = v.double, x > 0, Float(x).isFinite, Float(x) > 0 else { throw wrong(key, "a positive number") }
        return Float(x)
    }

    /// A string, or nil when the field is absent.
    package func string(_ key: String) throws -> String? {
        guard let v = fields[key] else { return nil }
        guard let s = v.string else { throw wrong(key, "a string") }
        return s
    }

    /// true or false, or nil when the field is absent or null.
    package func bool(_ key: String) throws -> Bool? {
        if isAbsent(key) { return nil }
        guard let b = fields[key]?.bool else { throw wrong(key, "true or false") }
        return b
    }
}

/// A config file that is not what its reader expects; the message names the file and field.
package struct JSONConfigError: Error, CustomStringConvertible, Sendable {
    package var message: String
    package init(_ message: String) { self.message = message }
    package var description: String { message }
}
