/// A model configuration, or an input given to a model, that cannot be used; the message says which field and why.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
