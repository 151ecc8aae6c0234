import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The child processes of a `--workers N` run on one host (`srdpr index`, `srdpr encode`): one
/// `srdpr` per shard, each writing its stderr to its own log. When one fails, the others are
/// stopped and the error names the failed shard with the end of its log.
public enum ShardProcesses {
    /// One child: what it is called in messages ("shard 2 of 4 (passages 1024..<2048)"), its
    /// arguments (after the executable) and the file its stderr goes to.
    public struct Child {
        public var name: String
        public var arguments: [String]
        public var logPath: String

        public init(name: String, arguments: [String], logPath: String) {
            self.name = name
            self.arguments = arguments
            self.logPath = logPath
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var child: String
        public var reason: String
        public var logPath: String
        public var logTail: String

        public var description: String {
            "\(child) failed (\(reason)); its log \(logPath) ends with:\n\(logTail)"
        }
    }

    /// The `srdpr` executable this process runs (what the children run).
    public static var currentExecutable: URL {
        URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
    }

    /// Runs `children` at once and returns when all have exited with status 0; `poll()` is called
    /// about twice a second meanwhile (progress). Throws ``Failure`` for the first child that ends
    /// otherwise, after ending the others (SIGTERM, then SIGKILL after 5 s).
    public static func run(executable: URL = currentExecutable, _ children: [Child], poll: () -> Void = {}) throws {
        var running: [(child: Child, process: Process)] = []
        func stopAll() {
            for (_, process) in running where process.isRunning { kill(process.processIdentifier, SIGTERM) }
            let deadline = Date(timeIntervalSinceNow: 5)
            while running.contains(where: { $0.process.isRunning }), deadline.timeIntervalSinceNow > 0 { usleep(50_000) }
            for (_, process) in running where process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
        for child in children {
            let process = Process()
            process.executableURL = executable
            process.arguments = child.arguments
            process.standardOutput = FileHandle.nullDevice
            do {
                guard FileManager.default.createFile(atPath: child.logPath, contents: nil),
                      let log = FileHandle(forWritingAtPath: child.logPath) else {
                    throw Failure(child: child.name, reason: "cannot create its log", logPath: child.logPath, logTail: "")
                }
                process.standardError = log
                try process.run()
                try? log.close()
            } catch let failure as Failure {
                stopAll()
                throw failure
            } catch {
                stopAll()
                throw Failure(child: child.name, reason: "cannot start \(executable.path): \(error)", logPath: child.logPath, logTail: "")
            }
            running.append((child, process))
        }
        while true {
            if let failed = running.first(where: { !$0.process.isRunning && !($0.process.terminationReason == .exit && $0.process.terminationStatus == 0) }) {
                stopAll()
                let process = failed.process
                let reason = process.terminationReason == .uncaughtSignal
                    ? "killed by signal \(process.terminationStatus)" : "exit status \(process.terminationStatus)"
                throw Failure(child: failed.child.name, reason: reason, logPath: failed.child.logPath, logTail: tail(of: failed.child.logPath))
            }
            if running.allSatisfy({ !$0.process.isRunning }) { break }
            poll()
            usleep(500_000)
        }
        poll()
    }

    /// The last lines of a log (its last 2 KB), for the error message.
    static func tail(of path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "(no log)" }
        let text = String(decoding: data.suffix(2048), as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true).suffix(8)
        return lines.map { "  " + $0 }.joined(separator: "\n")
    }
}
