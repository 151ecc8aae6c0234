import XCTest
import Foundation
import TestSupport

/// `srdpr encode --bind ADDR --world-size N` with `srdpr index-worker`s on tiny-bert, with the set-up
/// and helpers of the index's tests (the job's kind travels in the coordinator's job description):
/// the embeddings and ids made across hosts
/// (network namespaces, each a host with its own network stack) are the bytes of one process with
/// the workers' thread count, in both formats; a worker with another copy of the input is named,
/// nothing is written at the output paths, and a worker given its right copy (--corpus) finishes.
extension IndexAcrossHostsTests {
    /// Questions, passages and token ids, some with ids, a blank line among them.
    func writeEncodeInput(_ name: String, lines count: Int = 400) throws -> String {
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
    func oneProcessEncode(_ input: String, _ output: [String]) throws {
        let r = try Command.srdpr(["encode"] + model + ["--input", input] + output)
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    func encodeCoordinator(_ input: String, _ output: [String], bind: String, worldSize: Int, extra: [String] = [],
                           prefix: [String] = [], name: String = "coordinator") throws -> BackgroundCommand {
        try background(prefix, ["encode"] + model + ["--input", input] + output
                       + ["--bind", bind, "--world-size", String(worldSize), "--secret-file", secretFile!] + extra, name: name)
    }

    func contents(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    func testEncodeAcrossTwoNetworkNamespaceHostsIsTheOneProcessOutput() throws {
        let subnet = "10.235.0"
        try withThreeHosts(prefix: "srenc\(getpid() % 10000)", subnet: subnet) { on in
            let input = try writeEncodeInput("in.jsonl")
            let one = dir.appendingPathComponent("one").path, across = dir.appendingPathComponent("across").path
            try oneProcessEncode(input, ["--output", one + ".npy", "--format", "npy", "--ids", one + ".ids", "--window", "50"])
            let endpoint = "tcp://\(subnet).1:29612"
            let workers = try (0..<2).map { rank in
                try worker(rank: rank, endpoint: endpoint, extra: ["--heartbeat-timeout", "20"], prefix: on(rank + 1), name: "encode-worker\(rank)")
        }
        // Shards of one 8-input chunk: 50 of them, both hosts ask many times.
        let coordinator = try encodeCoordinator(input, ["--output", across + ".npy", "--format", "npy", "--ids", across + ".ids", "--window", "8"],
                                          bind: endpoint, worldSize: 2, extra: ["--shard-chunks", "1", "--heartbeat-timeout", "20"],
                                          prefix: on(0))
        XCTAssertEqual(coordinator.wait(seconds: 180), 0, coordinator.output)
        for w in workers { XCTAssertEqual(w.wait(seconds: 30), 0, w.output) }
        XCTAssertTrue(workers[0].stderr.contains("registered with \(endpoint) for an encode job"), workers[0].output)
        XCTAssertEqual(try contents(across + ".npy"), try contents(one + ".npy"), "the .npy matrix byte for byte")
        XCTAssertEqual(try contents(across + ".ids"), try contents(one + ".ids"), "the ids byte for byte")
        XCTAssertFalse(FileManager.default.fileExists(atPath: across + ".npy.shards"), "the shards are removed once merged")
        let built = (0..<2).map { shardsBuilt(coordinator.stderr, rank: $0, kind: "encode") }
        XCTAssertTrue(built.allSatisfy { $0 > 0 }, "both hosts took part: \(coordinator.stderr)")
        XCTAssertEqual(built.reduce(0, +), 50, coordinator.stderr)
        }
    }

    func testAWorkerWithAnotherInputIsRefusedByNameThenItsCopyFinishes() throws {
        let input = try writeEncodeInput("in.jsonl")
        let other = try writeEncodeInput("other.jsonl", lines: 399)
        let copy = dir.appendingPathComponent("copy.jsonl").path
        try FileManager.default.copyItem(atPath: input, toPath: copy)
        let one = dir.appendingPathComponent("one.jsonl").path, output = dir.appendingPathComponent("out.jsonl").path
        try oneProcessEncode(input, ["--output", one, "--window", "16"])
        let refused = try encodeCoordinator(input, ["--output", output, "--window", "16"], bind: "tcp://127.0.0.1:0", worldSize: 1,
                                      extra: ["--heartbeat-timeout", "10"], name: "refused")
        let stale = try worker(rank: 0, endpoint: try endpoint(of: refused, kind: "encode"), extra: ["--corpus", other], name: "stale")
        XCTAssertNotEqual(refused.wait(seconds: 60), 0, refused.output)
        XCTAssertNotEqual(stale.wait(seconds: 30), 0, stale.output)
        // Both sides' logs on failure: a hang here is the two processes waiting on each other.
        XCTAssertTrue(refused.stderr.contains("index-worker rank 0 on \(ProcessInfo.processInfo.hostName) failed: its input \(other) is"),
                      refused.output + "\nthe worker:\n" + stale.output)
        XCTAssertTrue(stale.stderr.contains("copy the same input to every host"), stale.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output), "no output after a failed run")
        // This host's right copy at another path: the one-process bytes.
        let again = try encodeCoordinator(input, ["--output", output, "--window", "16"], bind: "tcp://127.0.0.1:0", worldSize: 1, name: "again")
        let good = try worker(rank: 0, endpoint: try endpoint(of: again, kind: "encode"), extra: ["--corpus", copy], name: "good")
        XCTAssertEqual(again.wait(seconds: 60), 0, again.output)
        XCTAssertEqual(good.wait(seconds: 30), 0, good.output)
        XCTAssertEqual(try contents(output), try contents(one), "JSON lines byte for byte")
    }
}
