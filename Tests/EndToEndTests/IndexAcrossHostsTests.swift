import XCTest
import Foundation
import TestSupport

/// `srdpr index --bind ADDR --world-size N` with `srdpr index-worker`s on tiny-bert: the index
/// built across hosts (network namespaces, each a host with its own network stack) is the bytes
/// of one process with the workers' thread count; a worker with another corpus is named and
/// nothing looks complete; a lost worker's shard goes to another worker and the index is still
/// those bytes.
final class IndexAcrossHostsTests: XCTestCase {
    var dir: URL!
    var secretFile: String!

    override func setUpWithError() throws {
        dir = try Fixtures.temporaryDirectory("srdpr-index-hosts")
        secretFile = dir.appendingPathComponent("secret").path
        try "index-secret-\(UUID().uuidString)\n".write(toFile: secretFile, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: secretFile)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    var model: [String] { ["--model", Fixtures.url("tiny-bert").path, "--max-length", "64", "--threads", "1"] }

    /// The reference: one process, one thread (the workers' thread count), the same chunks.
    func oneProcessIndex(_ corpus: String, chunkRows: Int) throws -> String {
        let output = dir.appendingPathComponent("one").path
        let r = try Command.srdpr(["index"] + model + ["--corpus", corpus, "--output", output, "--chunk-rows", String(chunkRows)])
        XCTAssertEqual(r.status, 0, r.stderr)
        return output
    }

    func files(_ index: String) throws -> [Data] {
        try ["embeddings.f32", "ids.jsonl", "meta.json"].map { try Data(contentsOf: URL(fileURLWithPath: index + "/" + $0)) }
    }

    func coordinator(_ corpus: String, _ output: String, bind: String, worldSize: Int, chunkRows: Int, extra: [String] = [],
                     prefix: [String] = [], name: String = "coordinator") throws -> BackgroundCommand {
        let arguments = ["index"] + model + ["--corpus", corpus, "--output", output, "--chunk-rows", String(chunkRows),
                                             "--bind", bind, "--world-size", String(worldSize), "--secret-file", secretFile!] + extra
        return try background(prefix, arguments, name: name)
    }

    func worker(rank: Int?, endpoint: String, extra: [String] = [], prefix: [String] = [], environment: [String: String] = [:],
                name: String) throws -> BackgroundCommand {
        let arguments = ["index-worker", "--coordinator", endpoint, "--threads", "1", "--secret-file", secretFile!]
            + (rank.map { ["--rank", String($0)] } ?? []) + extra
        return try background(prefix, arguments, environment: environment, name: name)
    }

    /// `srdpr ARGUMENTS`, inside `prefix` (`ip netns exec HOST`) when given.
    func background(_ prefix: [String], _ arguments: [String], environment: [String: String] = [:], name: String) throws -> BackgroundCommand {
        let output = dir.appendingPathComponent(name)
        if prefix.isEmpty { return try BackgroundCommand(arguments, environment: environment, outputPrefix: output) }
        return try BackgroundCommand(Array(prefix.dropFirst()) + [Command.srdprBinary.path] + arguments,
                                     executable: URL(fileURLWithPath: prefix[0]), environment: environment, outputPrefix: output)
    }

    /// The coordinator's control address once it listens (it was given port 0); `kind`: its job's.
    func endpoint(of coordinator: BackgroundCommand, kind: String = "index") throws -> String {
        let deadline = Date(timeIntervalSinceNow: 60)
        let prefix = "\(kind): listening on "
        while deadline.timeIntervalSinceNow > 0 {
            if let line = coordinator.stderr.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) {
                return String(line.dropFirst(prefix.count).prefix(while: { $0 != ";" }))
            }
            if !coordinator.isRunning { break }
            usleep(20_000)
        }
        struct NotListening: Error, CustomStringConvertible { var description: String }
        throw NotListening(description: "the coordinator did not start listening: \(coordinator.output)")
    }

    func shardsBuilt(_ log: String, rank: Int, kind: String = "index") -> Int {
        guard let line = log.split(separator: "\n").first(where: { $0.contains("\(kind): rank \(rank) on ") && $0.contains(" built ") }),
              let range = line.range(of: " built ") else { return 0 }
        return Int(line[range.upperBound...].prefix(while: \.isNumber)) ?? 0
    }

    /// Runs `body` with three netns hosts named `prefix-h0..h2` at `subnet.1..3` (removed after),
    /// given the command prefix that runs on host i; skipped loudly where they cannot be made.
    func withThreeHosts(prefix hosts: String, subnet: String, _ body: (_ on: (Int) -> [String]) throws -> Void) throws {
        let up = Fixtures.packageRoot.appendingPathComponent("cluster/netns/up.sh").path
        let down = Fixtures.packageRoot.appendingPathComponent("cluster/netns/down.sh").path
        let made = try Command.run(URL(fileURLWithPath: "/bin/bash"), [up, "3", "--prefix", hosts, "--subnet", subnet])
        guard made.status == 0 else {
            // Network namespaces need root and iproute2 (CI runs as root on Debian).
            throw XCTSkip("SKIPPED: cannot create network namespaces here (needs root and iproute2; CI has both): \(made.stderr)")
        }
        defer { _ = try? Command.run(URL(fileURLWithPath: "/bin/bash"), [down, "--prefix", hosts]) }
        try body { host in ["/usr/sbin/ip", "netns", "exec", "\(hosts)-h\(host)"] }
    }

    func testIndexAcrossTwoNetworkNamespaceHostsIsTheOneProcessIndex() throws {
        let subnet = "10.236.0"
        try withThreeHosts(prefix: "srix\(getpid() % 10000)", subnet: subnet) { on in
            let (corpus, _) = try RetrievalData.small(dir, questions: 12, distractors: 90)
            let one = try oneProcessIndex(corpus, chunkRows: 4)
            let output = dir.appendingPathComponent("across").path
            let endpoint = "tcp://\(subnet).1:29611"
            // The workers start first and connect once the coordinator listens; one takes its rank
            // from the launcher's environment (RANK/WORLD_SIZE, as torchrun sets them).
            let workers = [
                try worker(rank: 0, endpoint: endpoint, extra: ["--heartbeat-timeout", "20"], prefix: on(1), name: "worker0"),
                try worker(rank: nil, endpoint: endpoint, extra: ["--heartbeat-timeout", "20"], prefix: on(2),
                           environment: ["RANK": "1", "WORLD_SIZE": "2"], name: "worker1"),
            ]
            let coordinator = try coordinator(corpus, output, bind: endpoint, worldSize: 2, chunkRows: 4,
                                              extra: ["--shard-chunks", "1", "--heartbeat-timeout", "20"], prefix: on(0))
            XCTAssertEqual(coordinator.wait(seconds: 180), 0, coordinator.output)
            for w in workers { XCTAssertEqual(w.wait(seconds: 30), 0, w.output) }
            XCTAssertTrue(workers[1].stderr.contains("index-worker: rank 1 from RANK, world size 2 from WORLD_SIZE"), workers[1].output)
            XCTAssertEqual(try files(output), try files(one), "embeddings.f32, ids.jsonl and meta.json byte for byte")
            XCTAssertFalse(FileManager.default.fileExists(atPath: output + "/shards"), "the shards are removed once merged")
            // Both hosts took part (shards of one 4-passage chunk, 27 of them: both ask many times).
            let shards0 = shardsBuilt(coordinator.stderr, rank: 0), shards1 = shardsBuilt(coordinator.stderr, rank: 1)
            XCTAssertGreaterThan(shards0, 0, coordinator.stderr)
            XCTAssertGreaterThan(shards1, 0, coordinator.stderr)
            let passages = try String(contentsOfFile: corpus, encoding: .utf8).split(separator: "\n").count
            XCTAssertEqual(shards0 + shards1, (passages + 3) / 4, coordinator.stderr)
        }
    }

    func testAWorkerWithAnotherCorpusIsRefusedByName() throws {
        let (corpus, _) = try RetrievalData.small(dir, questions: 12, distractors: 30)
        // The same passages but one word changed: the same size would not tell them apart, the CRC does.
        let text = try String(contentsOfFile: corpus, encoding: .utf8)
        let other = dir.appendingPathComponent("other-copy.jsonl").path
        try text.replacingOccurrences(of: "the", with: "teh").write(toFile: other, atomically: true, encoding: .utf8)
        let output = dir.appendingPathComponent("refused").path
        let coordinator = try coordinator(corpus, output, bind: "tcp://127.0.0.1:0", worldSize: 1, chunkRows: 8,
                                          extra: ["--heartbeat-timeout", "10"])
        let endpoint = try endpoint(of: coordinator)
        let stale = try worker(rank: 0, endpoint: endpoint, extra: ["--corpus", other], name: "stale")
        XCTAssertNotEqual(coordinator.wait(seconds: 60), 0, coordinator.output)
        XCTAssertNotEqual(stale.wait(seconds: 30), 0, stale.output)
        let size = (try FileManager.default.attributesOfItem(atPath: other)[.size] as? Int) ?? -1
        XCTAssertTrue(coordinator.stderr.contains("index-worker rank 0 on \(ProcessInfo.processInfo.hostName) failed: its corpus \(other) is \(size) bytes with CRC-32C"),
                      coordinator.output)
        XCTAssertTrue(coordinator.stderr.contains("the coordinator's \(corpus) is"), coordinator.output)
        XCTAssertTrue(stale.stderr.contains("copy the same corpus to every host"), stale.output)
        let meta = try String(contentsOfFile: output + "/meta.json", encoding: .utf8)
        XCTAssertTrue(meta.contains("\"complete\" : false"), meta)
        // With the right copy the same command finishes the index: the one-process bytes.
        let again = try self.coordinator(corpus, output, bind: "tcp://127.0.0.1:0", worldSize: 1, chunkRows: 8, name: "again")
        let good = try worker(rank: 0, endpoint: try self.endpoint(of: again), name: "good")
        XCTAssertEqual(again.wait(seconds: 60), 0, again.output)
        XCTAssertEqual(good.wait(seconds: 30), 0, good.output)
        XCTAssertEqual(try files(output), try files(try oneProcessIndex(corpus, chunkRows: 8)))
    }

    func testALostWorkersShardGoesToAnotherWorker() throws {
        let (corpus, _) = try RetrievalData.small(dir, questions: 12, distractors: 300)
        let expected = try files(try oneProcessIndex(corpus, chunkRows: 4))
        // Shards of one 4-passage chunk, 79 of them: a worker holds one from its first until the
        // last is handed out. Rank 1 is killed once it holds one; rank 0 takes it over. A shard of
        // the tiny model takes milliseconds, so rank 1 may have sent it back before the kill lands:
        // then nothing was lost, and the scenario runs again (at most 5 times).
        for attempt in 1...5 {
            let output = dir.appendingPathComponent("lost-\(attempt)").path
            let coordinator = try coordinator(corpus, output, bind: "tcp://127.0.0.1:0", worldSize: 2, chunkRows: 4,
                                              extra: ["--shard-chunks", "1", "--heartbeat-timeout", "3"], name: "coordinator-\(attempt)")
            let endpoint = try endpoint(of: coordinator)
            let doomed = try worker(rank: 1, endpoint: endpoint, extra: ["--heartbeat-timeout", "3"], name: "doomed-\(attempt)")
            let survivor = try worker(rank: 0, endpoint: endpoint, extra: ["--heartbeat-timeout", "3"], name: "survivor-\(attempt)")
            let deadline = Date(timeIntervalSinceNow: 60)
            while !coordinator.stderr.contains("-> rank 1 on"), deadline.timeIntervalSinceNow > 0 { usleep(2_000) }
            doomed.kill(SIGKILL)
            XCTAssertNotNil(doomed.wait(seconds: 10))
            XCTAssertEqual(coordinator.wait(seconds: 120), 0, coordinator.output)
            XCTAssertEqual(survivor.wait(seconds: 30), 0, survivor.output)
            XCTAssertEqual(try files(output), expected, "attempt \(attempt)")
            guard coordinator.stderr.contains("lost rank 1 on") else { continue }
            XCTAssertTrue(coordinator.stderr.contains("goes to the next worker"), coordinator.output)
            XCTAssertGreaterThan(shardsBuilt(coordinator.stderr, rank: 0), 0, coordinator.stderr)
            return
        }
        XCTFail("in 5 attempts rank 1 was never killed while it held a shard")
    }
}
