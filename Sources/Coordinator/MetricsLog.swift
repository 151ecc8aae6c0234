import Data
import Foundation

/// Errors of the metrics log.
public enum MetricsLogError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "cannot open metrics log \(path): \(reason)"
        case let .writeFailed(path, reason): return "cannot write metrics log \(path): \(reason)"
        }
    }
}

/// A value in one metrics record.
public enum MetricValue: Equatable, Sendable {
    case int(Int)
    case double(Double)
    case string(String)
    /// A nested object (the dev metrics of an evaluation row), keys in sorted order.
    case object([String: MetricValue])

    /// The value for the JSON writer, object keys sorted; non-finite numbers become null (JSON has
    /// no NaN), which a reader sees as missing.
    var orderedJSON: OrderedJSON {
        switch self {
        case .int(let v): return .int(v)
        case .double(let v): return .double(v)
        case .string(let s): return .string(s)
        case .object(let fields): return .object(fields.keys.sorted().map { ($0, fields[$0]!.orderedJSON) })
        }
    }
}

/// `metrics.jsonl` in the log directory: one JSON object per logged step, appended (a resumed run
/// continues the same file), each line written with a single `write(2)` so that a crash never
/// leaves half a line behind another.
public final class MetricsLog {
    public let fileURL: URL
    private var descriptor: Int32

    /// Opens (creating if needed) `logDir/metrics.jsonl` for appending.
    public init(logDir: URL, fileName: String = "metrics.jsonl") throws {
        do {
            try FileManager.default.createDirectory(at: logDir, withIntermediateDirectories: true)
        } catch {
            throw MetricsLogError.cannotOpen(path: logDir.path, reason: error.localizedDescription)
        }
        fileURL = logDir.appendingPathComponent(fileName)
        descriptor = open(fileURL.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw MetricsLogError.cannotOpen(path: fileURL.path, reason: String(cString: strerror(errno)))
        }
    }

    deinit { close() }

    /// Appends `{"step": step, <fields in key order>}`.
    public func log(step: Int, _ fields: [String: MetricValue]) throws {
        let sorted = fields.keys.sorted().filter { $0 != "step" }.map { ($0, fields[$0]!.orderedJSON) }
        let line = OrderedJSON.object([("step", .int(step))] + sorted).serialized() + "\n"
        guard descriptor >= 0 else { throw MetricsLogError.writeFailed(path: fileURL.path, reason: "the log was closed") }
        let bytes = Array(line.utf8)
        let written = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress!, $0.count) }
        guard written == bytes.count else {
            throw MetricsLogError.writeFailed(path: fileURL.path, reason: written < 0 ? String(cString: strerror(errno)) : "short write")
        }
    }

    public func close() {
        if descriptor >= 0 {
            _ = Foundation.close(descriptor)
            descriptor = -1
        }
    }
}
