import Data
import Foundation
import JobContracts
import Model

/// `keep_best=METRIC`: keeps the training checkpoint with the best dev value of METRIC (higher is
/// better for every metric srdpr computes) as `output_dir/{checkpoint_file_name}.best`, outside
/// the rotation, with `{...}.best.json` recording the metric, value and step. Both are replaced
/// atomically (a temporary file renamed over them), the checkpoint first, so the record never
/// claims more than the file holds. A resumed run reads the record and keeps the best so far.
public final class BestCheckpointKeeper {
    /// What `{prefix}.best.json` holds.
    public struct Record: Codable, Equatable, Sendable {
        public var metric: String
        public var value: Double
        public var step: Int
    }

    /// One evaluation's effect, for the logs (shared with the training loop through JobContracts).
    public typealias Outcome = BestCheckpointOutcome

    public let metric: String
    public let url: URL
    public let recordURL: URL
    public private(set) var best: Record?

    /// - Parameter resuming: read the best so far from the record of an earlier part of this run
    ///   (`model_file=`); a fresh run replaces whatever an earlier run left, and says so.
    public init(metric: String, directory: CheckpointDirectory, resuming: Bool, warn: (String) -> Void) {
        self.metric = metric
        url = directory.directory.appendingPathComponent("\(directory.prefix).best")
        recordURL = directory.directory.appendingPathComponent("\(directory.prefix).best.json")
        let fm = FileManager.default
        let record = fm.contents(atPath: recordURL.path).flatMap { try? JSONDecoder().decode(Record.self, from: $0) }
        if resuming, let record, fm.fileExists(atPath: url.path) {
            if record.metric == metric {
                best = record
                warn("keep_best: the best so far is \(metric) \(record.value) at step \(record.step) (\(url.path))")
            } else {
                warn("keep_best: \(url.path) was kept for \(record.metric), this run keeps \(metric); the next evaluation replaces it")
            }
        } else if fm.fileExists(atPath: url.path) {
            warn("keep_best: \(url.path) is from an earlier run\(resuming ? " (no readable \(recordURL.lastPathComponent))" : ""); the next evaluation replaces it")
        }
    }

    /// Offers the dev value of `step`. When it beats the best so far (the first evaluation always
    /// does), the checkpoint of this step becomes `url`: a hard link to `checkpointOfStep` when that
    /// file was written at this step (no copy), else a new file through `write(temporaryURL)`.
    public func offer(value: Double, step: Int, checkpointOfStep: URL?, write: (URL) throws -> Void) throws -> Outcome {
        if let best, !(value > best.value) {
            return Outcome(metric: metric, best: best.value, bestStep: best.step, improved: false, path: url.path, seconds: 0)
        }
        let start = Date()
        let directory = url.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: temporary) }
        if let source = checkpointOfStep, link(source.path, temporary.path) == 0 {
            // Same file system, same bytes: the rename below makes it the best atomically.
        } else {
            try write(temporary)
        }
        guard rename(temporary.path, url.path) == 0 else {
            throw CheckpointError.unwritable(path: url.path, reason: "rename: \(String(cString: strerror(errno)))")
        }
        let record = Record(metric: metric, value: value, step: step)
        do {
            try JSONEncoder.sortedKeys().encode(record).write(to: recordURL, options: .atomic)
        } catch {
            throw CheckpointError.unwritable(path: recordURL.path, reason: error.localizedDescription)
        }
        best = record
        return Outcome(metric: metric, best: value, bestStep: step, improved: true, path: url.path, seconds: Date().timeIntervalSince(start))
    }
}
