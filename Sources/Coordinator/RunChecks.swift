import Data
import Foundation
import JobContracts

/// What a run needs before anything heavy happens, checked the same way for every world size.
public enum RunChecks {
    /// Every required parameter set (all missing ones named at once), the configuration valid,
    /// every dataset of train_mode present (and with hard negatives where needed), output_dir and
    /// log_dir writable, then `OutputDirectoryPolicy` (refuse / overwrite an earlier run's
    /// checkpoints, move its logs aside). Returns (output_dir, log_dir).
    public static func check(_ config: TrainingConfig, print: (String) -> Void = { Swift.print($0); fflush(stdout) }) throws
        -> (output: URL, logs: URL) {
        try config.requireParameters()
        try config.validate()
        try requireDatasets(config)
        try HardNegativeCoverage.check(config, warn: { FileHandle.standardError.write(Foundation.Data(($0 + "\n").utf8)) })
        let output = try requireWritableDirectory(config.outputDir!, key: "output_dir")
        let logs = try requireWritableDirectory(config.logDir, key: "log_dir")
        try OutputDirectoryPolicy.prepare(config, outputDir: output, logDir: logs, print: print)
        return (output, logs)
    }

    /// Creates `path` if needed and checks a file can be created in it.
    static func requireWritableDirectory(_ path: String, key: String) throws -> URL {
        let url = URL(fileURLWithPath: path)
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw TrainerError.notWritable(key: key, path: path, reason: "it is a file, not a directory")
        }
        do { try fm.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            // Name the obstacle: the nearest existing ancestor.
            var ancestor = url.deletingLastPathComponent()
            while !fm.fileExists(atPath: ancestor.path, isDirectory: &isDirectory), ancestor.path != "/" {
                ancestor = ancestor.deletingLastPathComponent()
            }
            let why = isDirectory.boolValue ? "cannot create the directory inside \(ancestor.path) (permission denied?)"
                : "\(ancestor.path) is a file, so the directory cannot be created"
            throw TrainerError.notWritable(key: key, path: path, reason: why)
        }
        let probe = url.appendingPathComponent(".srdpr-write-test-\(getpid())")
        guard fm.createFile(atPath: probe.path, contents: Foundation.Data("ok".utf8)) else {
            throw TrainerError.notWritable(key: key, path: path, reason: "cannot create files in it (permission denied?)")
        }
        try? fm.removeItem(at: probe)
        return url
    }

    /// Checks that the ByteDataset of every pipeline of train_mode is a directory with its two files.
    static func requireDatasets(_ config: TrainingConfig) throws {
        var paths: [(String, String?)] = []
        for kind in try config.pipelines() {
            switch kind {
            case .inbatch: paths.append(("bytedataset.inbatch", config.bytedataset.inbatch))
            case .pos: paths.append(("bytedataset.pos", config.bytedataset.pos))
            case .poshard: paths.append(("bytedataset.poshard", config.bytedataset.poshard))
            case .hard:
                paths.append(("bytedataset.hard.hardneg", config.bytedataset.hard.hardneg))
                if config.pipeline.hard.useRandneg { paths.append(("bytedataset.hard.randneg", config.bytedataset.hard.randneg)) }
            }
        }
        for case let (key, path?) in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw TrainerError.missingDataset(key: key, path: path,
                    reason: "no such directory (train_mode=\(config.trainMode) needs it); create it with `srdpr create-dataset`")
            }
            for file in ["idxs.pkl", "data.pkl"] where !FileManager.default.fileExists(atPath: path + "/" + file) {
                throw TrainerError.missingDataset(key: key, path: path,
                    reason: "the directory has no \(file); a ByteDataset holds idxs.pkl and data.pkl (made by `srdpr create-dataset`)")
            }
        }
    }
}
