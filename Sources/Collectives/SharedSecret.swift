import Foundation

/// The policy for a job's shared secret, which every connection of the control channel and the
/// ring must prove (``RingHandshake``). Like ssh with a private key, a secret file that group or
/// others can read is refused, and so is a secret too short to resist guessing.
public enum SharedSecret {
    /// Fewest bytes accepted (128 bits when random).
    public static let minimumBytes = 16

    /// The secret in `path` (surrounding whitespace removed), after checking the file's mode and
    /// the secret's length.
    public static func load(file path: String) throws -> [UInt8] {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw CollectivesError.insecureSecret(source: "--secret-file \(path)",
                                                  reason: "cannot read it: \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw CollectivesError.insecureSecret(source: "--secret-file \(path)", reason: "it is not a regular file")
        }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw CollectivesError.insecureSecret(
                source: "--secret-file \(path)",
                reason: "group or others can read or write it (mode \(String(mode, radix: 8))); "
                    + "make it private with `chmod 600 \(path)`, as ssh requires of a private key")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CollectivesError.insecureSecret(source: "--secret-file \(path)", reason: "cannot read it")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return try validate(Array(text.utf8), source: "--secret-file \(path)")
    }

    /// A fresh secret for a job whose processes this one starts (`--workers N`): 32 random bytes
    /// as 64 hex digits, so that it can travel in SRDPR_SECRET.
    public static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// `secret` unchanged when it is long enough.
    public static func validate(_ secret: [UInt8], source: String) throws -> [UInt8] {
        guard secret.count >= minimumBytes else {
            throw CollectivesError.insecureSecret(
                source: source,
                reason: "the secret is \(secret.count) byte(s), fewer than \(minimumBytes); make a random one, e.g. "
                    + "`(umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \\n' > FILE)`")
        }
        return secret
    }
}
