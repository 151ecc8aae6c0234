import Data
import Foundation
import Model

/// What a run may do with an `output_dir` and `log_dir` that already hold an earlier run's files,
/// as the Hugging Face Trainer does: a fresh run into a directory with checkpoints is refused
/// unless it resumes (`model_file=`, `resume=latest`) or says `overwrite_output_dir=true`; the
/// logs of an earlier run are moved aside into `log_dir/earlier-runs/<time>/` so that
/// metrics.jsonl and the TensorBoard files hold one run each. Nothing is deleted but the
/// checkpoints `overwrite_output_dir=true` asks to delete.
public enum OutputDirectoryPolicy {
    /// Files of `log_dir` that belong to one run.
    static func isRunLog(_ name: String) -> Bool {
        name == "metrics.jsonl" || name == "config.yaml" || name.hasPrefix("events.out.tfevents.")
    }

    /// Resolves `resume=latest` into `model_file=` (the newest checkpoint of output_dir that opens
    /// as a complete file), so that every process of a job resumes the same file. Returns the
    /// configuration and the KEY=VALUE parameters (for the workers) with the choice made.
    public static func resolveResume(_ config: TrainingConfig, parameters: [String],
                                     print: (String) -> Void = { Swift.print($0); fflush(stdout) }) throws
        -> (config: TrainingConfig, parameters: [String]) {
        if let modelFile = config.modelFile, !FileManager.default.fileExists(atPath: modelFile) {
            throw OutputDirectoryError.missingModelFile(path: modelFile, existing: existingCheckpoints(near: modelFile, config: config))
        }
        guard config.resume == "latest" else { return (config, parameters) }
        if let modelFile = config.modelFile {
            throw OutputDirectoryError.conflictingResume(modelFile: modelFile)
        }
        var resolved = config
        resolved.resume = nil
        var resolvedParameters = parameters + ["resume=null"]
        guard let output = config.outputDir else { return (resolved, resolvedParameters) }
        let directory = CheckpointDirectory(directory: URL(fileURLWithPath: output), prefix: config.checkpointFileName)
        let found = FileManager.default.fileExists(atPath: output) ? try directory.list() : []
        for (_, url) in found.reversed() {
            do {
                _ = try CheckpointFile(url: url)
            } catch {
                print("resume=latest: skipping \(url.path): \(error)")
                continue
            }
            print("resume=latest: resuming from \(url.path), the newest checkpoint in output_dir")
            resolved.modelFile = url.path
            resolvedParameters.append("model_file=\(url.path)")
            return (resolved, resolvedParameters)
        }
        print("resume=latest: no checkpoint in output_dir=\(output); starting a fresh run")
        return (resolved, resolvedParameters)
    }

    /// The checkpoints in the directory of `modelFile` and in output_dir (paths, oldest first).
    static func existingCheckpoints(near modelFile: String, config: TrainingConfig) -> [String] {
        var directories = [URL(fileURLWithPath: modelFile).deletingLastPathComponent().standardizedFileURL]
        if let output = config.outputDir {
            let url = URL(fileURLWithPath: output).standardizedFileURL
            if url != directories[0] { directories.append(url) }
        }
        return directories.flatMap { directory in
            ((try? CheckpointDirectory(directory: directory, prefix: config.checkpointFileName).list()) ?? []).map(\.url.path)
        }
    }

    /// Applies the policy before a run starts (after every other check passed, so that an error
    /// elsewhere deletes nothing): refuses, or deletes the earlier checkpoints when
    /// overwrite_output_dir=true, and moves an earlier run's logs aside on a fresh run.
    public static func prepare(_ config: TrainingConfig, outputDir: URL, logDir: URL,
                               print: (String) -> Void = { Swift.print($0); fflush(stdout) }) throws {
        let resuming = config.modelFile != nil
        if resuming, config.overwriteOutputDir == true {
            throw OutputDirectoryError.conflictingOverwrite(modelFile: config.modelFile!)
        }
        let fm = FileManager.default
        if !resuming, fm.fileExists(atPath: outputDir.path) {
            let directory = CheckpointDirectory(directory: outputDir, prefix: config.checkpointFileName)
            let earlier = try directory.list()
            if !earlier.isEmpty {
                guard config.overwriteOutputDir == true else {
                    throw OutputDirectoryError.holdsCheckpoints(directory: outputDir.path, checkpoints: earlier.map(\.url.lastPathComponent))
                }
                for (_, url) in earlier {
                    do { try fm.removeItem(at: url) } catch {
                        throw OutputDirectoryError.cannotRemove(path: url.path, reason: error.localizedDescription)
                    }
                }
                print("overwrite_output_dir=true: deleted \(earlier.count) checkpoint(s) of an earlier run from \(outputDir.path)")
            }
        }
        if !resuming { try moveEarlierLogs(in: logDir, print: print) }
    }

    /// Moves metrics.jsonl, config.yaml and the TensorBoard event files of `logDir` into
    /// `logDir/earlier-runs/<UTC time>/` (TensorBoard then shows them as a run of their own).
    static func moveEarlierLogs(in logDir: URL, print: (String) -> Void) throws {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: logDir.path) else { return }
        let logs = names.filter(isRunLog).sorted()
        guard !logs.isEmpty else { return }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        let base = logDir.appendingPathComponent("earlier-runs").appendingPathComponent(formatter.string(from: Date()))
        var target = base
        var n = 1
        while fm.fileExists(atPath: target.path) {
            n += 1
            target = URL(fileURLWithPath: base.path + "-\(n)")
        }
        do {
            try fm.createDirectory(at: target, withIntermediateDirectories: true)
            for name in logs { try fm.moveItem(at: logDir.appendingPathComponent(name), to: target.appendingPathComponent(name)) }
        } catch {
            throw OutputDirectoryError.cannotMoveLogs(directory: logDir.path, target: target.path, reason: error.localizedDescription)
        }
        print("log_dir \(logDir.path) held the logs of an earlier run; moved them to \(target.path)")
    }
}

/// Why a run does not start with the output directory it was given; each says what to do.
public enum OutputDirectoryError: Error, CustomStringConvertible, Equatable {
    case holdsCheckpoints(directory: String, checkpoints: [String])
    case conflictingResume(modelFile: String)
    case missingModelFile(path: String, existing: [String])
    case conflictingOverwrite(modelFile: String)
    case cannotRemove(path: String, reason: String)
    case cannotMoveLogs(directory: String, target: String, reason: String)

    public var description: String {
        switch self {
        case let .holdsCheckpoints(directory, checkpoints):
            let latest = checkpoints.last.map { directory + "/" + $0 } ?? directory
            return "output_dir=\(directory) already holds checkpoints of an earlier run (\(checkpoints.joined(separator: ", "))); "
                + "a new run there would mix with them and rotation could delete them. Either resume it "
                + "(resume=latest, or model_file=\(latest)), start over with overwrite_output_dir=true (deletes them), "
                + "or choose another output_dir"
        case let .conflictingResume(modelFile):
            return "resume=latest and model_file=\(modelFile) both say where to resume from; give one of them"
        case let .missingModelFile(path, existing):
            return "model_file=\(path): no such checkpoint; "
                + (existing.isEmpty ? "there is no checkpoint in its directory or in output_dir either"
                    : "the checkpoints there are: " + existing.joined(separator: ", ") + " (or resume=latest picks the newest)")
        case let .conflictingOverwrite(modelFile):
            return "overwrite_output_dir=true and a resume from \(modelFile) contradict each other: a resumed run keeps "
                + "output_dir's checkpoints; drop overwrite_output_dir, or drop model_file/resume to start over"
        case let .cannotRemove(path, reason):
            return "overwrite_output_dir=true: cannot delete \(path): \(reason)"
        case let .cannotMoveLogs(directory, target, reason):
            return "log_dir=\(directory) holds an earlier run's logs, which could not be moved to \(target): \(reason); choose another log_dir"
        }
    }
}
