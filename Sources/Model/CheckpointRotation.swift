import Foundation

/// Checkpoints of one run: files `{prefix}.{step}` in a directory (SPEC §7), of which at most
/// keep_checkpoint_max are kept, the newest by step.
public struct CheckpointDirectory {
    public let directory: URL
    /// `checkpoint_file_name`, e.g. `dpr_biencoder`.
    public let prefix: String

    public init(directory: URL, prefix: String) {
        self.directory = directory
        self.prefix = prefix
    }

    /// `directory/{prefix}.{step}`.
    public func url(step: Int) -> URL { directory.appendingPathComponent("\(prefix).\(step)") }

    /// The checkpoints present, oldest step first. Files that only look similar (temporary files of
    /// an interrupted write, `{prefix}.best`, ...) are not checkpoints and are left alone.
    public func list() throws -> [(step: Int, url: URL)] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw CheckpointError.unreadable(path: directory.path, reason: error.localizedDescription)
        }
        let head = prefix + "."
        return names.compactMap { name -> (Int, URL)? in
            guard name.hasPrefix(head) else { return nil }
            let suffix = name.dropFirst(head.count)
            guard !suffix.isEmpty, suffix.allSatisfy({ $0.isASCII && $0.isNumber }), let step = Int(suffix) else { return nil }
            return (step, directory.appendingPathComponent(name))
        }.sorted { $0.0 < $1.0 }
    }

    /// The newest checkpoint, if any.
    public func latest() throws -> (step: Int, url: URL)? { try list().last }

    /// Writes `writer` as the checkpoint of `step` (atomically), then removes the oldest ones so
    /// that at most `keep` remain (`keep` ≤ 0 keeps all). Returns the new file's URL.
    @discardableResult
    public func save(_ writer: CheckpointWriter, step: Int, keep: Int) throws -> URL {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) {
            do {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            } catch {
                throw CheckpointError.unwritable(path: directory.path, reason: error.localizedDescription)
            }
        } else if !isDirectory.boolValue {
            throw CheckpointError.unwritable(path: directory.path, reason: "it is a file, not a directory")
        }
        removeAbandonedTemporaryFiles()
        let url = url(step: step)
        // Rotation runs only after the new file is complete: a failed write (disk full) deletes
        // nothing, and the error names the newest checkpoint that is still there.
        let previous = try? latest()
        // Refuse before writing when the file cannot fit (rotation frees space only afterwards).
        let needed = writer.estimatedByteCount
        if writer.simulatedFreeBytes == nil, let free = CheckpointSpace.freeBytes(in: directory), free < needed {
            throw CheckpointError.notWritten(path: url.path,
                reason: "No space left on device: the checkpoint needs \(CheckpointSpace.describe(needed)) and only "
                    + "\(CheckpointSpace.describe(free)) are free in \(directory.path) (free space, lower keep_checkpoint_max, "
                    + "or set output_dir elsewhere)",
                previous: previous?.url.path)
        }
        do {
            try writer.write(to: url)
        } catch CheckpointError.notWritten(let path, let reason, let samePath) {
            throw CheckpointError.notWritten(path: path, reason: reason, previous: previous?.url.path ?? samePath)
        }
        try rotate(keep: keep, sparing: url)
        return url
    }

    /// Removes the temporary files (`.{prefix}.{step}.tmp-{pid}-{n}`) that a writer killed before
    /// its rename left behind: never checkpoints, but they take space. Only those whose process is
    /// gone; a file of a live process (another writer) is left alone.
    func removeAbandonedTemporaryFiles() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return }
        for name in names where name.hasPrefix(".\(prefix).") {
            guard let marker = name.range(of: ".tmp-") else { continue }
            let pidText = name[marker.upperBound...].prefix { $0 != "-" }
            guard let pid = Int32(pidText), pid > 0, pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
    }

    /// Removes the oldest checkpoints beyond `keep` (`keep` ≤ 0 keeps all); returns what was removed.
    /// `sparing` (the checkpoint just written) is never removed, even when older files have higher
    /// steps (a run resumed from an earlier checkpoint): it counts as the newest.
    @discardableResult
    public func rotate(keep: Int, sparing: URL? = nil) throws -> [URL] {
        guard keep > 0 else { return [] }
        let all = try list()
        guard all.count > keep else { return [] }
        let candidates = all.filter { $0.url.standardizedFileURL != sparing?.standardizedFileURL }
        var removed: [URL] = []
        for (_, url) in candidates.prefix(all.count - keep) {
            do {
                try FileManager.default.removeItem(at: url)
            } catch {
                throw CheckpointError.unwritable(path: url.path, reason: "cannot remove old checkpoint: \(error.localizedDescription)")
            }
            removed.append(url)
        }
        return removed
    }
}
