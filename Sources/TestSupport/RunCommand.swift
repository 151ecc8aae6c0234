import Foundation

/// Runs the built `srdpr` (or any program) and captures its output, for end-to-end tests.
public struct CommandResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

private final class DataBox: @unchecked Sendable {
    var data = Data()
    let done = DispatchSemaphore(value: 0)
}

public enum Command {
    /// The `srdpr` binary of the configuration the tests were built in (SRDPR_BIN overrides it).
    public static var srdprBinary: URL {
        if let override = ProcessInfo.processInfo.environment["SRDPR_BIN"] {
            return URL(fileURLWithPath: override)
        }
        // The test bundle sits in the same build directory as the executable.
        let bundleDir = Bundle.main.bundleURL
        for dir in [bundleDir, bundleDir.deletingLastPathComponent()] {
            let candidate = dir.appendingPathComponent("srdpr")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        for config in ["release", "debug"] {
            let candidate = Fixtures.packageRoot.appendingPathComponent(".build/\(config)/srdpr")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return Fixtures.packageRoot.appendingPathComponent(".build/debug/srdpr")
    }

    /// Runs `executable` with `arguments`, feeding `stdin`, and waits for it to end; `environment`
    /// is added to this process's, `unsetting` names variables the child must not see.
    public static func run(_ executable: URL, _ arguments: [String], stdin: String? = nil,
                           environment: [String: String]? = nil, unsetting: [String] = []) throws -> CommandResult {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if environment != nil || !unsetting.isEmpty {
            var merged = ProcessInfo.processInfo.environment.merging(environment ?? [:]) { $1 }
            for name in unsetting { merged[name] = nil }
            process.environment = merged
        }
        let outPipe = Pipe(), errPipe = Pipe(), inPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = inPipe
        try process.run()
        // Drain stderr on another thread while this one writes stdin and drains stdout, so a
        // chatty child never blocks on a full pipe.
        let errBox = DataBox()
        let errThread = Thread { errBox.data = errPipe.fileHandleForReading.readDataToEndOfFile(); errBox.done.signal() }
        errThread.start()
        if let stdin { inPipe.fileHandleForWriting.write(Data(stdin.utf8)) }
        try? inPipe.fileHandleForWriting.close()
        let outData = outPipe.fileHandleForReading.readDataToEndOfFile()
        errBox.done.wait()
        let errData = errBox.data
        process.waitUntilExit()
        return CommandResult(status: process.terminationStatus,
                             stdout: String(decoding: outData, as: UTF8.self),
                             stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Runs `srdpr` with `arguments`.
    public static func srdpr(_ arguments: [String], stdin: String? = nil,
                             environment: [String: String]? = nil, unsetting: [String] = []) throws -> CommandResult {
        try run(srdprBinary, arguments, stdin: stdin, environment: environment, unsetting: unsetting)
    }
}

/// A process running in the background with its output in files (no pipe to fill up), for tests
/// that kill, time or watch processes.
public final class BackgroundCommand {
    public let process = Process()
    public let stdoutURL: URL
    public let stderrURL: URL

    public init(_ arguments: [String], executable: URL = Command.srdprBinary, environment: [String: String] = [:],
                outputPrefix: URL) throws {
        stdoutURL = outputPrefix.appendingPathExtension("stdout")
        stderrURL = outputPrefix.appendingPathExtension("stderr")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }
    public var stdout: String { Self.text(of: stdoutURL) }
    public var stderr: String { Self.text(of: stderrURL) }
    /// Both outputs, for assertion messages.
    public var output: String { "stdout:\n\(stdout)\nstderr:\n\(stderr)" }

    /// Waits up to `seconds` for the process to end; its exit status, or nil if it still runs.
    @discardableResult
    public func wait(seconds: Double) -> Int32? {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while process.isRunning, deadline.timeIntervalSinceNow > 0 { usleep(20_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// The file's text ("" when missing, empty or not UTF-8). An empty file is not handed to
    /// Foundation: on Linux its reader leaks a 4 KB buffer for every empty file it reads
    /// (swift-foundation 6.3, seen by LeakSanitizer), and tests poll outputs that are still empty.
    static func text(of url: URL) -> String {
        var info = stat()
        guard stat(url.path, &info) == 0, info.st_size > 0 else { return "" }
        return (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    }

    public func kill(_ signal: Int32 = SIGKILL) { Foundation.kill(process.processIdentifier, signal) }

    deinit {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }
}
