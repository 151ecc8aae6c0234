import Collectives
import Coordinator
import Foundation
import Model
import TestSupport
import XCTest

/// Multi-process training (issue 6): `srdpr train --workers N`, `srdpr coordinator` + `srdpr worker`,
/// on loopback and across network-namespace hosts; equivalence with one process, lost processes,
/// resume after a kill, and peers without the secret.
final class MultiWorkerTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-multi") }
    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
        // XCTest keeps every test case object until the process exits: drop what this one holds.
        dir = nil
        datasetPath = nil
    }

    /// pos+poshard+hard on the demo data, dropout 0, `updates` updates.
    func parameters(_ name: String, updates: Int = 6, checkpointEvery: Int = 100, extra: [String] = []) throws -> [String] {
        TrainFixture.multiWorkerParameters(dataset: try datasets(), run: dir.appendingPathComponent(name), updates: updates,
                                           checkpointEvery: checkpointEvery) + extra
    }

    private var datasetPath: String?
    func datasets() throws -> String {
        if let datasetPath { return datasetPath }
        datasetPath = try TrainFixture.hardNegativeDataset(dir)
        return datasetPath!
    }

    func checkpoint(_ name: String, step: Int) -> URL {
        dir.appendingPathComponent("\(name)/checkpoints/dpr_biencoder.\(step)")
    }

    func losses(_ name: String) throws -> [Double] {
        try TrainFixture.metrics(dir.appendingPathComponent("\(name)/logs")).compactMap { $0["loss"] as? Double }
    }

    /// Final weights of two runs that differ only in float summation order (N workers vs one):
    /// AdamW divides each update by the gradient's running RMS, so an element whose gradient is
    /// near zero turns rounding noise into an update of up to ~lr per step (SPEC §6). So: at least
    /// 99.9% of all elements within 1e-5 relative (to their tensor's largest value), and every
    /// element within `noiseBound` (2 · steps · lr) absolute. Returns the fraction outside 1e-5.
    @discardableResult
    func assertWeightsClose(_ a: URL, _ b: URL, noiseBound: Float, file: StaticString = #filePath, line: UInt = #line) throws -> Double {
        let x = try TrainFixture.floatSections(a), y = try TrainFixture.floatSections(b)
        XCTAssertEqual(Set(x.keys), Set(y.keys), file: file, line: line)
        var total = 0, outside = 0, tensors = 0
        var worst: Float = 0
        for (name, values) in x where name.hasPrefix("question_model.") || name.hasPrefix("ctx_model.") {
            let other = try XCTUnwrap(y[name])
            XCTAssertEqual(values.count, other.count, name, file: file, line: line)
            let scale = max(values.map(abs).max() ?? 0, 1e-3)
            for (u, v) in zip(values, other) {
                let d = abs(u - v)
                if d > 1e-5 * scale { outside += 1 }
                worst = max(worst, d)
            }
            total += values.count
            tensors += 1
        }
        let fraction = Double(outside) / Double(max(total, 1))
        XCTAssertGreaterThan(tensors, 20, file: file, line: line)
        XCTAssertLessThanOrEqual(fraction, 1e-3, "\(outside) of \(total) elements differ by more than 1e-5 relative", file: file, line: line)
        XCTAssertLessThanOrEqual(worst, noiseBound, "largest difference \(worst)", file: file, line: line)
        print("weights \(a.lastPathComponent) vs \(b.path): \(outside) of \(total) elements beyond 1e-5 relative (\(fraction)), largest |diff| \(worst)")
        return fraction
    }

    /// Must show 1: 2 and 3 workers on loopback make the same losses and final weights as one process.
    func testTwoAndThreeWorkersMatchOneProcess() throws {
        try TrainFixture.train(try parameters("one"))
        let reference = try losses("one")
        XCTAssertEqual(reference.count, 6)
        XCTAssertGreaterThan(Set(reference).count, 1)
        for world in [2, 3] {
            let name = "world\(world)"
            let r = try Command.srdpr(["train", "--threads", "\(world)", "--workers", "\(world)", "--heartbeat-timeout", "20"]
                                      + (try parameters(name)))
            XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
            XCTAssertTrue(r.stdout.contains("training pos+poshard+hard on \(world) worker(s)"), r.stdout)
            // Workers on one host link over Unix sockets (`--ring-transport auto`, the default).
            let links = (0..<world).map { "\(($0 + world - 1) % world)->\($0) Unix socket (same host)" }.joined(separator: ", ")
            XCTAssertTrue(r.stdout.contains("ring links: \(links)"), r.stdout)
            for rank in 0..<world {
                XCTAssertTrue(r.stderr.contains("rank \(rank): payloads to rank \((rank + 1) % world) go through a shared-memory lane"), r.stderr)
            }
            let got = try losses(name)
            XCTAssertEqual(got.count, reference.count)
            for (a, b) in zip(got, reference) { XCTAssertEqual(a, b, accuracy: 1e-5 * abs(b), "world \(world) losses \(got) vs \(reference)") }
            try assertWeightsClose(checkpoint(name, step: 6), checkpoint("one", step: 6), noiseBound: 2 * 6 * 1e-4)
            // The metrics say how long each rank waited on its peers.
            let records = try TrainFixture.metrics(dir.appendingPathComponent("\(name)/logs"))
            XCTAssertEqual(records.last?["world_size"] as? Int, world)
            XCTAssertNotNil(records.last?["communication_fraction"] as? Double)
        }
    }

    /// allreduce_dtype=bf16 reaches every worker (each says so) and changes the numbers only by
    /// bf16 rounding of the averaged gradients: the losses stay within 1% of one process's; one
    /// process with bf16 is bit-identical to one process with fp32 (nothing is sent).
    func testBF16AllReduceReachesEveryWorkerAndStaysClose() throws {
        try TrainFixture.train(try parameters("one"))
        try TrainFixture.train(try parameters("one-bf16", extra: ["allreduce_dtype=bf16"]))
        XCTAssertEqual(try losses("one-bf16"), try losses("one"))
        XCTAssertEqual(try TrainFixture.floatSections(checkpoint("one-bf16", step: 6)), try TrainFixture.floatSections(checkpoint("one", step: 6)))
        let r = try Command.srdpr(["train", "--threads", "2", "--workers", "2", "--heartbeat-timeout", "20"]
                                  + (try parameters("two-bf16", extra: ["allreduce_dtype=bf16"])))
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        for rank in 0..<2 {
            XCTAssertTrue((r.stdout + r.stderr).contains("rank \(rank): ready (world 2, 1 thread(s)); gradients all-reduced as bf16"), r.stdout + r.stderr)
        }
        let reference = try losses("one"), got = try losses("two-bf16")
        XCTAssertEqual(got.count, reference.count)
        for (a, b) in zip(got, reference) { XCTAssertEqual(a, b, accuracy: 1e-2 * abs(b), "bf16 losses \(got) vs \(reference)") }
    }

    /// Dropout masks are keyed by each row's place in the global batch: 2 workers with dropout on
    /// draw the masks one process draws, so they still make the same updates.
    func testTwoWorkersWithDropoutMatchOneProcess() throws {
        try TrainFixture.train(try parameters("one", extra: ["dropout=0.1"]))
        // Over loopback TCP this time (the test above runs the Unix-socket links).
        let r = try Command.srdpr(["train", "--threads", "2", "--workers", "2", "--ring-transport", "tcp"]
                                  + (try parameters("two", extra: ["dropout=0.1"])))
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("ring links: 1->0 TCP, 0->1 TCP"), r.stdout)
        let reference = try losses("one"), got = try losses("two")
        XCTAssertEqual(got.count, 6)
        for (a, b) in zip(got, reference) { XCTAssertEqual(a, b, accuracy: 1e-5 * abs(b), "losses \(got) vs \(reference)") }
        try assertWeightsClose(checkpoint("two", step: 6), checkpoint("one", step: 6), noiseBound: 2 * 6 * 1e-4)
    }

    /// The coordinator and workers started by hand, the secret from a file: a worker with another
    /// secret is refused (and says so) and the job still finishes; raw garbage sent to the
    /// coordinator's port and to a worker's ring port is logged and ignored.
    func testIntrudersAreRefusedAndTheJobContinues() throws {
        let secretFile = dir.appendingPathComponent("secret")
        try "s3cret-\(UUID().uuidString)\n".write(to: secretFile, atomically: true, encoding: .utf8)
        let wrongSecret = dir.appendingPathComponent("wrong")
        try "not-the-secret-\(UUID().uuidString)\n".write(to: wrongSecret, atomically: true, encoding: .utf8)
        // Secret files must be private (SharedSecret), as ssh requires of a key.
        for file in [secretFile, wrongSecret] { try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path) }
        let port = FreePorts.loopback(1)[0]
        let endpoint = "tcp://127.0.0.1:\(port)"
        let env = ["SRDPR_FAULT_STEP_DELAY_MS": "150"]
        let coordinator = try BackgroundCommand(["coordinator", "--world-size", "2", "--bind", endpoint, "--secret-file", secretFile.path,
                                                 "--heartbeat-timeout", "20"] + (try parameters("manual", updates: 12)),
                                                outputPrefix: dir.appendingPathComponent("coordinator"))
        // The intruder claims rank 1 without the secret: refused at once.
        let intruder = try Command.srdpr(["worker", "--rank", "1", "--coordinator", endpoint, "--secret-file", wrongSecret.path,
                                          "--threads", "1", "--heartbeat-timeout", "5"])
        XCTAssertNotEqual(intruder.status, 0)
        XCTAssertTrue(intruder.stderr.contains("refused"), intruder.stderr)
        let workers = try (0..<2).map { rank in
            try BackgroundCommand(["worker", "--rank", "\(rank)", "--coordinator", endpoint, "--secret-file", secretFile.path,
                                   "--threads", "1", "--heartbeat-timeout", "20", "--ring-transport", "tcp"], environment: env,
                                  outputPrefix: dir.appendingPathComponent("worker\(rank)"))
        }
        // Once rank 1 is training, throw garbage at both ports.
        let ringLine = try waitFor(workers[1], contains: "ready", seconds: 60)
        XCTAssertTrue(ringLine)
        let marker = "ring tcp://127.0.0.1:"
        let text = workers[1].stderr
        let start = try XCTUnwrap(text.range(of: marker)).upperBound
        let ringPort = try XCTUnwrap(Int(text[start...].prefix { $0.isNumber }))
        for target in [port, ringPort] {
            RawTCP.send(port: target, bytes: Array("GET / HTTP/1.0\r\n\r\n".utf8))
            RawTCP.send(port: target, bytes: [0xff, 0, 0, 0, 0, 0, 0, 0, 9, 0x7f] + (0..<300).map { UInt8(truncatingIfNeeded: $0 * 7) })
        }
        XCTAssertEqual(coordinator.wait(seconds: 120), 0, coordinator.output)
        for w in workers { XCTAssertEqual(w.wait(seconds: 30), 0, w.output) }
        XCTAssertTrue(coordinator.stderr.contains("refused") || coordinator.stdout.contains("refused"),
                      "the refusal is logged:\n\(coordinator.output)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoint("manual", step: 12).path))
    }

    /// --curve: the control channel and the ring encrypted with keys derived from the secret.
    func testCurveEncryptedJobFinishes() throws {
        let env = ["SRDPR_SECRET": "curve-\(UUID().uuidString)"]
        let endpoint = "tcp://127.0.0.1:\(FreePorts.loopback(1)[0])"
        let coordinator = try BackgroundCommand(["coordinator", "--world-size", "2", "--bind", endpoint, "--curve", "--heartbeat-timeout", "20"]
                                                + (try parameters("curve")),
                                                environment: env, outputPrefix: dir.appendingPathComponent("coordinator"))
        let workers = try (0..<2).map { rank in
            try BackgroundCommand(["worker", "--rank", "\(rank)", "--coordinator", endpoint, "--curve", "--threads", "1",
                                   "--heartbeat-timeout", "20"], environment: env, outputPrefix: dir.appendingPathComponent("worker\(rank)"))
        }
        XCTAssertEqual(coordinator.wait(seconds: 120), 0, coordinator.output)
        for w in workers { XCTAssertEqual(w.wait(seconds: 30), 0, w.output) }
        XCTAssertEqual(try losses("curve").count, 6)
    }

    /// Must show 3: kill -9 of a worker mid-step stops every process within the timeout with a
    /// message naming the lost rank and the last checkpoint; resuming from that checkpoint reaches
    /// the same final weights, bit for bit, as an uninterrupted run.
    func testKilledWorkerStopsTheJobAndResumeMatchesAnUninterruptedRun() throws {
        let updates = 9
        let straight = try Command.srdpr(["train", "--threads", "2", "--workers", "2"] + (try parameters("straight", updates: updates)))
        XCTAssertEqual(straight.status, 0, straight.stdout + straight.stderr)

        let secret = "secret-\(UUID().uuidString)"
        let port = FreePorts.loopback(1)[0]
        let endpoint = "tcp://127.0.0.1:\(port)"
        let timeout = 3.0
        let env = ["SRDPR_SECRET": secret, "SRDPR_FAULT_STEP_DELAY_MS": "400"]
        let coordinator = try BackgroundCommand(["coordinator", "--world-size", "2", "--bind", endpoint, "--heartbeat-timeout", "\(timeout)"]
                                                + (try parameters("killed", updates: updates, checkpointEvery: 3)),
                                                environment: env, outputPrefix: dir.appendingPathComponent("coordinator"))
        let workers = try (0..<2).map { rank in
            try BackgroundCommand(["worker", "--rank", "\(rank)", "--coordinator", endpoint, "--threads", "1",
                                   "--heartbeat-timeout", "\(timeout)"], environment: env,
                                  outputPrefix: dir.appendingPathComponent("worker\(rank)"))
        }
        // Wait for the checkpoint of step 3, then kill rank 1 in the middle of step 5 or so.
        let ckpt = checkpoint("killed", step: 3)
        let deadline = Date(timeIntervalSinceNow: 120)
        while !FileManager.default.fileExists(atPath: ckpt.path), deadline.timeIntervalSinceNow > 0, coordinator.isRunning { usleep(50_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: ckpt.path), coordinator.output)
        usleep(600_000)
        let killedAt = Date()
        workers[1].kill()
        let status = coordinator.wait(seconds: timeout + 15)
        let survivor = workers[0].wait(seconds: timeout + 15)
        let took = Date().timeIntervalSince(killedAt)
        XCTAssertNotNil(status, "the coordinator hangs:\n\(coordinator.output)")
        XCTAssertNotEqual(status, 0)
        XCTAssertNotNil(survivor, "rank 0 hangs:\n\(workers[0].output)")
        XCTAssertNotEqual(survivor, 0)
        XCTAssertLessThan(took, timeout + 10)
        let said = coordinator.output
        XCTAssertTrue(said.contains("rank 1"), said)
        XCTAssertTrue(said.contains("model_file=\(ckpt.path)"), said)
        XCTAssertTrue(workers[0].stderr.contains(ckpt.path), workers[0].output)

        // Resume from the last complete checkpoint (the one of step 3, or 6 if it got that far).
        let last = try CheckpointDirectory(directory: dir.appendingPathComponent("killed/checkpoints"), prefix: "dpr_biencoder").latest()
        let resumeFrom = try XCTUnwrap(last).url
        let resumed = try Command.srdpr(["train", "--threads", "2", "--workers", "2"]
                                        + (try parameters("killed", updates: updates, checkpointEvery: 3, extra: ["model_file=\(resumeFrom.path)"])))
        XCTAssertEqual(resumed.status, 0, resumed.stdout + resumed.stderr)
        let a = try TrainFixture.floatSections(checkpoint("killed", step: updates))
        let b = try TrainFixture.floatSections(checkpoint("straight", step: updates))
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        for (name, values) in a { XCTAssertEqual(values, b[name], "\(name) differs after resume") }
    }

    /// Must show 3: kill -9 of the coordinator ends every worker within the timeout, saying why.
    func testKilledCoordinatorStopsTheWorkers() throws {
        let env = ["SRDPR_SECRET": "secret-\(UUID().uuidString)", "SRDPR_FAULT_STEP_DELAY_MS": "300"]
        let endpoint = "tcp://127.0.0.1:\(FreePorts.loopback(1)[0])"
        let timeout = 3.0
        let coordinator = try BackgroundCommand(["coordinator", "--world-size", "2", "--bind", endpoint, "--heartbeat-timeout", "\(timeout)"]
                                                + (try parameters("coordinatorkill", updates: 200)),
                                                environment: env, outputPrefix: dir.appendingPathComponent("coordinator"))
        let workers = try (0..<2).map { rank in
            try BackgroundCommand(["worker", "--rank", "\(rank)", "--coordinator", endpoint, "--threads", "1",
                                   "--heartbeat-timeout", "\(timeout)"], environment: env,
                                  outputPrefix: dir.appendingPathComponent("worker\(rank)"))
        }
        XCTAssertTrue(try waitFor(coordinator, contains: "step 2/200", seconds: 60), coordinator.output)
        coordinator.kill()
        for w in workers {
            let status = w.wait(seconds: timeout + 10)
            XCTAssertNotNil(status, "a worker hangs after the coordinator died:\n\(w.output)")
            XCTAssertNotEqual(status, 0)
            XCTAssertTrue(w.stderr.contains("lost the coordinator"), w.output)
        }
    }

    /// Must show 1, across hosts: the same job with the coordinator and 2 workers on three
    /// network-namespace hosts (veth + bridge) equals one process.
    func testWorkersOnNetworkNamespaceHostsMatchOneProcess() throws {
        let up = Fixtures.packageRoot.appendingPathComponent("cluster/netns/up.sh").path
        let down = Fixtures.packageRoot.appendingPathComponent("cluster/netns/down.sh").path
        let prefix = "srdt\(getpid() % 10000)"
        let made = try Command.run(URL(fileURLWithPath: "/bin/bash"), [up, "3", "--prefix", prefix])
        guard made.status == 0 else {
            // Network namespaces need root and iproute2 (CI runs as root on Debian).
            throw XCTSkip("cannot create network namespaces here: \(made.stderr)")
        }
        defer { _ = try? Command.run(URL(fileURLWithPath: "/bin/bash"), [down, "--prefix", prefix]) }
        try TrainFixture.train(try parameters("one"))
        let secretFile = dir.appendingPathComponent("secret")
        try "netns-secret-\(UUID().uuidString)\n".write(to: secretFile, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: secretFile.path)
        let binary = Command.srdprBinary.path
        let endpoint = "tcp://10.231.0.1:29500"
        let coordinator = try BackgroundCommand(
            ["netns", "exec", "\(prefix)-h0", binary, "coordinator", "--world-size", "2", "--bind", endpoint,
             "--secret-file", secretFile.path, "--heartbeat-timeout", "20"] + (try parameters("netns")),
            executable: URL(fileURLWithPath: "/usr/sbin/ip"), outputPrefix: dir.appendingPathComponent("coordinator"))
        let workers = try (0..<2).map { rank in
            try BackgroundCommand(
                ["netns", "exec", "\(prefix)-h\(rank + 1)", binary, "worker", "--rank", "\(rank)", "--coordinator", endpoint,
                 "--bind-host", "10.231.0.\(rank + 2)", "--secret-file", secretFile.path, "--threads", "1", "--heartbeat-timeout", "20"],
                executable: URL(fileURLWithPath: "/usr/sbin/ip"), outputPrefix: dir.appendingPathComponent("worker\(rank)"))
        }
        XCTAssertEqual(coordinator.wait(seconds: 180), 0, coordinator.output)
        for w in workers { XCTAssertEqual(w.wait(seconds: 30), 0, w.output) }
        XCTAssertTrue(workers[1].stderr.contains("ring tcp://10.231.0.3:"), workers[1].output)
        // Separate network namespaces are separate hosts: TCP, though the kernel is the same.
        XCTAssertTrue(coordinator.output.contains("ring links: 1->0 TCP, 0->1 TCP"), coordinator.output)
        let reference = try losses("one"), got = try losses("netns")
        XCTAssertEqual(got.count, reference.count)
        for (a, b) in zip(got, reference) { XCTAssertEqual(a, b, accuracy: 1e-5 * abs(b)) }
        try assertWeightsClose(checkpoint("netns", step: 6), checkpoint("one", step: 6), noiseBound: 2 * 6 * 1e-4)
    }

    /// A /dev/shm too small for a lane (containers often have 64 MB; here 1 MB, in a mount
    /// namespace of the test's own): the ranks say why and send their payloads over the socket.
    func testNoRoomForALaneFallsBackToTheSocket() throws {
        let script = "mount -t tmpfs -o size=1m tmpfs /dev/shm && exec \"$0\" bench allreduce --world 2 --sizes-mb 1,4 --iters 2"
        let r = try Command.run(URL(fileURLWithPath: "/usr/bin/unshare"), ["-m", "/bin/bash", "-c", script, Command.srdprBinary.path])
        if r.status != 0 && (r.stderr.contains("Operation not permitted") || r.stderr.contains("unshare failed")) {
            throw XCTSkip("no mount namespace here (needs root): \(r.stderr)")
        }
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stderr.contains("no shared-memory lane to rank 1, payloads go over the socket"), r.stderr)
        XCTAssertTrue(r.stderr.contains("No space left on device"), r.stderr)
        XCTAssertTrue(r.stdout.contains("\"correct\":true"), r.stdout)
        XCTAssertFalse(r.stdout.contains("\"correct\":false"), r.stdout)
    }

    /// The CI smoke subset of the fault-injection suite (cluster/faults/run.sh) on three network-
    /// namespace hosts: a link down for longer than the timeout, and rank 0 killed while it writes a
    /// checkpoint. Each: no process hangs, the cause is named, the newest checkpoint is valid and
    /// resuming from it ends bit-identical to an uninterrupted run.
    func testFaultInjectionSmoke() throws {
        let probe = try Command.run(URL(fileURLWithPath: "/usr/sbin/ip"), ["netns", "list"])
        guard probe.status == 0, getuid() == 0 else { throw XCTSkip("network namespaces need root and iproute2 (CI has both)") }
        let script = Fixtures.packageRoot.appendingPathComponent("cluster/faults/run.sh").path
        let r = try Command.run(URL(fileURLWithPath: "/bin/bash"), [script, "link-down", "kill-checkpoint"],
                                environment: ["SRDPR_BIN": Command.srdprBinary.path, "SRDPR_FIXTURES": Fixtures.root.path])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("2 passed, 0 failed"), r.stdout + r.stderr)
    }

    /// Polls a process's output for `text`.
    func waitFor(_ command: BackgroundCommand, contains text: String, seconds: Double) throws -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while deadline.timeIntervalSinceNow > 0 {
            if command.stdout.contains(text) || command.stderr.contains(text) { return true }
            if !command.isRunning { return command.stdout.contains(text) || command.stderr.contains(text) }
            usleep(50_000)
        }
        return false
    }
}

/// Bytes straight onto a TCP port (no ZeroMQ): what a port scanner or a confused client sends.
enum RawTCP {
    static func send(port: Int, bytes: [UInt8]) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { return }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        usleep(100_000)
    }
}
