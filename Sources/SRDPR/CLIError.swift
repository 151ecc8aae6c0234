/// A user-facing error of a subcommand: printed as `Error: message`, exit status 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
