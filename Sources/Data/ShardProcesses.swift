import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The child processes of a `--workers N` run on one host (`srdpr index` and `srdpr encode`: N
/// `srdpr index-worker`s pulling shards from their parent), each writing its stderr to its own log. When one fails,
/// the others are stopped and the error names the failed child with the end of its log.
public enum ShardProcesses {
    /// One child: what it is called in messages ("index-worker rank 1 of 2"), its
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

    /// Children started at once, checked by their parent as it goes (`srdpr index --workers` checks
    /// them from its coordinator's loop).
    public final class Group {
        private var running: [(child: Child, process: Process)] = []

        /// Starts every child; when one cannot start, the ones started are ended and it is named.
        public init(executable: URL = ShardProcesses.currentExecutable, _ children: [Child], environment: [String: String]? = nil) throws {
            for child in children {
                let process = Process()
                process.executableURL = executable
                process.arguments = child.arguments
                if let environment { process.environment = environment }
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
                    stop()
                    throw failure
                } catch {
                    stop()
                    throw Failure(child: child.name, reason: "cannot start \(executable.path): \(error)", logPath: child.logPath, logTail: "")
                }
                running.append((child, process))
            }
        }

        /// The children's process ids, in order.
        public var pids: [Int32] { running.map { $0.process.processIdentifier } }

        /// True once every child has exited with status 0; throws ``Failure`` for the first that
        /// ended otherwise (the caller ends the others with ``stop()``).
        public func check() throws -> Bool {
            if let failed = running.first(where: { !$0.process.isRunning && !($0.process.terminationReason == .exit && $0.process.terminationStatus == 0) }) {
                let process = failed.process
                let reason = process.terminationReason == .uncaughtSignal
                    ? "killed by signal \(process.terminationStatus)" : "exit status \(process.terminationStatus)"
                throw Failure(child: failed.child.name, reason: reason, logPath: failed.child.logPath, logTail: tail(of: failed.child.logPath))
            }
            return running.allSatisfy { !$0.process.isRunning }
        }

        /// Waits up to `seconds` for every child to end by itself, then checks them as ``check()`` does.
        public func waitForExit(seconds: Double) throws {
            let deadline = Date(timeIntervalSinceNow: seconds)
            while try !check() {
                guard deadline.timeIntervalSinceNow > 0 else {
                    let late = running.filter { $0.process.isRunning }.map(\.child.name)
                    stop()
                    throw Failure(child: late.joined(separator: ", "), reason: "still running \(Int(seconds)) s after the job ended; killed",
                                  logPath: running.first(where: { late.contains($0.child.name) })?.child.logPath ?? "", logTail: "")
                }
                usleep(50_000)
            }
        }

        /// Ends the children still running: SIGTERM, then SIGKILL after 5 s.
        public func stop() {
            for (_, process) in running where process.isRunning { kill(process.processIdentifier, SIGTERM) }
            let deadline = Date(timeIntervalSinceNow: 5)
            while running.contains(where: { $0.process.isRunning }), deadline.timeIntervalSinceNow > 0 { usleep(50_000) }
            for (_, process) in running where process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
    }

    /// The last lines of a log (its last 2 KB), for the error message.
    static func tail(of path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "(no log)" }
        let text = String(decoding: data.suffix(2048), as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true).suffix(8)
        return lines.map { "  " + $0 }.joined(separator: "\n")
    }
}
