import XCTest
import Foundation
import TestSupport

/// `srdpr encode --bind ADDR --world-size N` with `srdpr index-worker`s on tiny-bert (the job's
/// kind travels in the coordinator's job description): the embeddings and ids made across hosts
/// (network namespaces, each a host with its own network stack) are the bytes of one process with
/// the workers' thread count, in both formats; a worker with another copy of the input is named,
/// nothing is written at the output paths, and a worker given its right copy (--corpus) finishes.
final class EncodeAcrossHostsTests: XCTestCase {
    var dir: URL!
    var secretFile: String!

    override func setUpWithError() throws {
        dir = try Fixtures.temporaryDirectory("srdpr-encode-hosts")
        secretFile = dir.appendingPathComponent("secret").path
        try "encode-secret-\(UUID().uuidString)\n".write(toFile: secretFile, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: secretFile)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    var model: [String] { ["--model", Fixtures.url("tiny-bert").path, "--max-length", "32", "--threads", "1"] }

    /// Questions, passages and token ids, some with ids, a blank line among them.
    func writeInput(_ name: String, lines count: Int = 400) throws -> String {
        let lines = (0..<count).map { i -> String in
            switch i % 4 {
            case 0: return #"{"id": "q\#(i)", "question": "what is item \#(i) of the list"}"#
            case 1: return #"{"_id": \#(i), "title": "Item \#(i)", "text": "\#(String(repeating: "word ", count: i % 37))end"}"#
            case 2: return i == 2 ? "" : #"{"input_ids": [101, \#(1000 + i % 500), 102]}"#
            default: return #"{"question": "short \#(i)"}"#
            }
        }
        let path = dir.appendingPathComponent(name).path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// One process, one thread (the workers' thread count): what every spread run must equal.
    func oneProcess(_ input: String, _ output: [String]) throws {
        let r = try Command.srdpr(["encode"] + model + ["--input", input] + output)
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    /// `srdpr ARGUMENTS` in the background, inside `prefix` (`ip netns exec HOST`) when given.
    func background(_ prefix: [String], _ arguments: [String], name: String) throws -> BackgroundCommand {
        let output = dir.appendingPathComponent(name)
        if prefix.isEmpty { return try BackgroundCommand(arguments, outputPrefix: output) }
        return try BackgroundCommand(Array(prefix.dropFirst()) + [Command.srdprBinary.path] + arguments,
                                     executable: URL(fileURLWithPath: prefix[0]), outputPrefix: output)
    }

    func coordinator(_ input: String, _ output: [String], bind: String, worldSize: Int, extra: [String] = [],
                     prefix: [String] = [], name: String = "coordinator") throws -> BackgroundCommand {
        try background(prefix, ["encode"] + model + ["--input", input] + output
                       + ["--bind", bind, "--world-size", String(worldSize), "--secret-file", secretFile!] + extra, name: name)
    }

    func worker(rank: Int, endpoint: String, extra: [String] = [], prefix: [String] = [], name: String) throws -> BackgroundCommand {
        try background(prefix, ["index-worker", "--rank", String(rank), "--coordinator", endpoint, "--threads", "1",
                                "--secret-file", secretFile!] + extra, name: name)
    }

    /// The coordinator's control address once it listens (it was given port 0).
    func endpoint(of coordinator: BackgroundCommand) throws -> String {
        let deadline = Date(timeIntervalSinceNow: 60)
        while deadline.timeIntervalSinceNow > 0 {
            if let line = coordinator.stderr.split(separator: "\n").first(where: { $0.hasPrefix("encode: listening on ") }) {
                return String(line.dropFirst("encode: listening on ".count).prefix(while: { $0 != ";" }))
            }
            if !coordinator.isRunning { break }
            usleep(20_000)
        }
        struct NotListening: Error, CustomStringConvertible { var description: String }
        throw NotListening(description: "the coordinator did not start listening: \(coordinator.output)")
    }

    func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    func testEncodeAcrossTwoNetworkNamespaceHostsIsTheOneProcessOutput() throws {
        let up = Fixtures.packageRoot.appendingPathComponent("cluster/netns/up.sh").path
        let down = Fixtures.packageRoot.appendingPathComponent("cluster/netns/down.sh").path
        let hosts = "srenc\(getpid() % 10000)", subnet = "10.235.0"
        let made = try Command.run(URL(fileURLWithPath: "/bin/bash"), [up, "3", "--prefix", hosts, "--subnet", subnet])
        guard made.status == 0 else {
            // Network namespaces need root and iproute2 (CI runs as root on Debian).
            throw XCTSkip("SKIPPED: cannot create network namespaces here (needs root and iproute2; CI has both): \(made.stderr)")
        }
        defer { _ = try? Command.run(URL(fileURLWithPath: "/bin/bash"), [down, "--prefix", hosts]) }
        let input = try writeInput("in.jsonl")
        let one = dir.appendingPathComponent("one").path, across = dir.appendingPathComponent("across").path
        try oneProcess(input, ["--output", one + ".npy", "--format", "npy", "--ids", one + ".ids", "--window", "50"])
        let endpoint = "tcp://\(subnet).1:29612"
        func on(_ host: Int) -> [String] { ["/usr/sbin/ip", "netns", "exec", "\(hosts)-h\(host)"] }
        let workers = try (0..<2).map { rank in
            try worker(rank: rank, endpoint: endpoint, extra: ["--heartbeat-timeout", "20"], prefix: on(rank + 1), name: "worker\(rank)")
        }
        // Shards of one 8-input chunk: 50 of them, both hosts ask many times.
        let coordinator = try coordinator(input, ["--output", across + ".npy", "--format", "npy", "--ids", across + ".ids", "--window", "8"],
                                          bind: endpoint, worldSize: 2, extra: ["--shard-chunks", "1", "--heartbeat-timeout", "20"],
                                          prefix: on(0))
        XCTAssertEqual(coordinator.wait(seconds: 180), 0, coordinator.output)
        for w in workers { XCTAssertEqual(w.wait(seconds: 30), 0, w.output) }
        XCTAssertTrue(workers[0].stderr.contains("registered with \(endpoint) for an encode job"), workers[0].output)
        XCTAssertEqual(try bytes(across + ".npy"), try bytes(one + ".npy"), "the .npy matrix byte for byte")
        XCTAssertEqual(try bytes(across + ".ids"), try bytes(one + ".ids"), "the ids byte for byte")
        XCTAssertFalse(FileManager.default.fileExists(atPath: across + ".npy.shards"), "the shards are removed once merged")
        let built = (0..<2).map { shardsBuilt(coordinator.stderr, rank: $0) }
        XCTAssertTrue(built.allSatisfy { $0 > 0 }, "both hosts took part: \(coordinator.stderr)")
        XCTAssertEqual(built.reduce(0, +), 50, coordinator.stderr)
    }

    /// The shards the coordinator's closing line says `rank` built.
    func shardsBuilt(_ log: String, rank: Int) -> Int {
        guard let line = log.split(separator: "\n").first(where: { $0.contains("encode: rank \(rank) on ") && $0.contains(" built ") }),
              let range = line.range(of: " built ") else { return 0 }
        return Int(line[range.upperBound...].prefix(while: \.isNumber)) ?? 0
    }

    func testAWorkerWithAnotherInputIsRefusedByNameThenItsCopyFinishes() throws {
        let input = try writeInput("in.jsonl")
        let other = try writeInput("other.jsonl", lines: 399)
        let copy = dir.appendingPathComponent("copy.jsonl").path
        try FileManager.default.copyItem(atPath: input, toPath: copy)
        let one = dir.appendingPathComponent("one.jsonl").path, output = dir.appendingPathComponent("out.jsonl").path
        try oneProcess(input, ["--output", one, "--window", "16"])
        let refused = try coordinator(input, ["--output", output, "--window", "16"], bind: "tcp://127.0.0.1:0", worldSize: 1,
                                      extra: ["--heartbeat-timeout", "10"], name: "refused")
        let stale = try worker(rank: 0, endpoint: try endpoint(of: refused), extra: ["--corpus", other], name: "stale")
        XCTAssertNotEqual(refused.wait(seconds: 60), 0, refused.output)
        XCTAssertNotEqual(stale.wait(seconds: 30), 0, stale.output)
        XCTAssertTrue(refused.stderr.contains("index-worker rank 0 on \(ProcessInfo.processInfo.hostName) failed: its input \(other) is"),
                      refused.output)
        XCTAssertTrue(stale.stderr.contains("copy the same input to every host"), stale.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output), "no output after a failed run")
        // This host's right copy at another path: the one-process bytes.
        let again = try coordinator(input, ["--output", output, "--window", "16"], bind: "tcp://127.0.0.1:0", worldSize: 1, name: "again")
        let good = try worker(rank: 0, endpoint: try endpoint(of: again), extra: ["--corpus", copy], name: "good")
        XCTAssertEqual(again.wait(seconds: 60), 0, again.output)
        XCTAssertEqual(good.wait(seconds: 30), 0, good.output)
        XCTAssertEqual(try bytes(output), try bytes(one), "JSON lines byte for byte")
    }
}
