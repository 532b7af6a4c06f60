/// A tokenizer that cannot be built, read or applied: a vocabulary or merges table that does not
/// load, a file in the wrong schema, a character outside a character vocabulary. The message names
/// the file or table and what was expected.
public struct TokenizerError: Error, CustomStringConvertible, Sendable {
    /// One line, for the user.
    public var message: String
    /// Makes an error with a one-line message.
    public init(_ message: String) { self.message = message }
    /// The message, as is.
    public var description: String { message }
}
