import Foundation

/// The temporary file a checkpoint write is filling, so that a process ending at once (a second
/// Ctrl-C, an abort order from the coordinator) can remove it first and leave no half-written
/// file behind. Kept as a C string: `removeTemporaryFile()` runs inside a signal handler, where
/// only async-signal-safe calls (unlink) are allowed.
public enum CheckpointInFlight {
    nonisolated(unsafe) private static var temporaryPath: UnsafeMutablePointer<CChar>? = nil

    /// Called by the writer before it creates `path`. The previous string is not freed: a signal
    /// handler may be reading it (one short string per checkpoint).
    static func begin(_ path: String) { temporaryPath = strdup(path) }

    /// Called once the temporary file is renamed or removed.
    static func end() { temporaryPath = nil }

    /// Unlinks the temporary file being written, if any (async-signal-safe).
    public static func removeTemporaryFile() {
        if let path = temporaryPath { unlink(path) }
    }
}

/// Free space checks before a checkpoint is written: a write that cannot fit fails at once,
/// naming the sizes, instead of filling the disk first.
enum CheckpointSpace {
    /// Bytes available to this user in the file system of `directory` (nil when unknown).
    static func freeBytes(in directory: URL) -> Int? {
        var stats = statvfs()
        guard statvfs(directory.path, &stats) == 0 else { return nil }
        return Int(stats.f_bavail) * Int(stats.f_frsize)
    }

    /// "541.2 MB".
    static func describe(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1_048_576) }
}
