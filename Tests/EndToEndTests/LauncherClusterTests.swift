import Collectives
import Coordinator
import Foundation
import JobContracts
import TestSupport
import XCTest

/// The launchers users start multi-node jobs with, for real (issue 21): a Slurm cluster (Debian's
/// slurm-wlm + munge: slurmctld and one slurmd per host), an sshd per host, and Open MPI's mpirun,
/// on three network-namespace hosts made by cluster/testcluster/up.sh. Each job's per-step losses
/// equal one process's; under Slurm a crashed node stops every process within the heartbeat
/// timeout naming the lost rank, and the requeued job resumes and ends bit-identical to an
/// uninterrupted run; scancel checkpoints and stops every process. One cluster serves the class.
final class LauncherClusterTests: XCTestCase {
    /// The cluster, made by the first test that needs it and removed after the last.
    nonisolated(unsafe) static var cluster: URL?
    nonisolated(unsafe) static var work: URL?
    nonisolated(unsafe) static var skipReason: String?
    nonisolated(unsafe) static var oneProcessLosses: [Double]?
    nonisolated(unsafe) static var uninterruptedJob: String?
    static let prefix = "srlc\(getpid() % 10000)"
    static let subnet = "10.238.0"
    static let timeout = 4.0
    static func address(_ host: Int) -> String { "\(subnet).\(host + 1)" }
    static var script: (String) -> String = { Fixtures.packageRoot.appendingPathComponent("cluster/\($0)").path }

    override class func tearDown() {
        if let cluster { _ = ClusterScript.run([script("testcluster/down.sh"), cluster.path]) }
        if let work { try? FileManager.default.removeItem(at: work) }
        cluster = nil
        work = nil
        super.tearDown()
    }

    /// Makes the cluster once; a machine that cannot have one makes every test skip, saying why.
    func requireCluster() throws -> URL {
        if let reason = Self.skipReason { throw XCTSkip(reason) }
        if let cluster = Self.cluster { return cluster }
        guard getuid() == 0 else { return try skip("network namespaces and the daemons need root (CI runs as root)") }
        let needed = ["/usr/sbin/slurmctld": "slurmctld", "/usr/sbin/slurmd": "slurmd", "/usr/bin/sbatch": "slurm-client",
                      "/usr/sbin/munged": "munge", "/usr/sbin/sshd": "openssh-server", "/usr/bin/mpirun": "openmpi-bin"]
        let missing = needed.filter { !FileManager.default.isExecutableFile(atPath: $0.key) }.map(\.value).sorted()
        guard missing.isEmpty else {
            return try skip("the Debian package(s) \(missing.joined(separator: ", ")) are not installed (scripts/setup.sh --test installs them)")
        }
        let work = try Fixtures.temporaryDirectory("srdpr-launchers")
        Self.work = work
        let cluster = work.appendingPathComponent("cluster")
        let up = ClusterScript.run([Self.script("testcluster/up.sh"), cluster.path, "--hosts", "3", "--prefix", Self.prefix,
                                    "--subnet", Self.subnet, "--ssh", "--slurm"])
        // The packages are there and we are root: a cluster that does not come up is a failure, not a skip.
        guard up.status == 0 else {
            Self.skipReason = "the test cluster did not come up (see the first failure)"
            XCTFail("cluster/testcluster/up.sh failed:\n\(up.stdout)\n\(up.stderr)")
            throw XCTSkip("the test cluster did not come up")
        }
        Self.cluster = cluster
        return cluster
    }

    func skip(_ reason: String) throws -> URL {
        let message = "SKIPPED LauncherClusterTests: \(reason)"
        print(message)
        Self.skipReason = message
        throw XCTSkip(message)
    }

    // MARK: The job

    /// The same tiny job as MultiWorkerTests (pos+poshard+hard on demo samples with hard negatives, tiny-bert).
    func parameters(_ name: String, updates: Int = 6) throws -> [String] {
        let work = try XCTUnwrap(Self.work)
        return TrainFixture.multiWorkerParameters(dataset: try TrainFixture.hardNegativeDataset(work), run: work.appendingPathComponent(name),
                                                  updates: updates, checkpointEvery: 3)
    }

    func run(_ name: String) throws -> URL { try XCTUnwrap(Self.work).appendingPathComponent(name) }

    func losses(_ name: String) throws -> [Double] {
        try TrainFixture.metrics(run(name).appendingPathComponent("logs")).compactMap { $0["loss"] as? Double }
    }

    /// The single-process run every launcher's losses are compared with (fp32 tolerance as in MultiWorkerTests).
    func assertLossesMatchOneProcess(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        if Self.oneProcessLosses == nil {
            try TrainFixture.train(try parameters("one"))
            Self.oneProcessLosses = try losses("one")
        }
        let reference = try XCTUnwrap(Self.oneProcessLosses)
        let got = try losses(name)
        XCTAssertEqual(reference.count, 6, file: file, line: line)
        XCTAssertGreaterThan(Set(reference).count, 1, file: file, line: line)
        XCTAssertEqual(got.count, reference.count, "\(name): \(got)", file: file, line: line)
        for (a, b) in zip(got, reference) {
            XCTAssertEqual(a, b, accuracy: 1e-5 * abs(b), "\(name) losses \(got) vs one process \(reference)", file: file, line: line)
        }
    }

    /// A command on host I of the cluster (SLURM_CONF set).
    func onHost(_ host: Int, _ arguments: [String], environment: [String: String]? = nil) throws -> CommandResult {
        try Command.run(URL(fileURLWithPath: "/bin/bash"), [Self.script("testcluster/run.sh"), try requireCluster().path, "\(host)"] + arguments,
                        environment: environment)
    }

    /// The srdpr processes still running on the hosts.
    func srdprProcesses(hosts: [Int]) -> [String] {
        hosts.flatMap { host -> [String] in
            let pids = ((try? Command.run(URL(fileURLWithPath: "/usr/sbin/ip"), ["netns", "pids", "\(Self.prefix)-h\(host)"]))?.stdout ?? "")
                .split(separator: "\n").map(String.init)
            return pids.filter { pid in
                ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "").hasPrefix("srdpr")
            }.map { "node\(host) pid \($0)" }
        }
    }

    var jobEnvironment: [String: String] {
        ["SRDPR_BIN": Command.srdprBinary.path, "SRDPR_HEARTBEAT_TIMEOUT": "\(Int(Self.timeout))"]
    }

    /// `sbatch --nodes=3 --cpus-per-task=1 cluster/slurm/srdpr.sbatch PARAMETERS`; returns the job id.
    func submit(_ name: String, updates: Int = 6, options: [String] = [], environment: [String: String] = [:]) throws -> String {
        let output = try run(name).path + "-%j.out"
        let r = try onHost(0, ["sbatch", "--parsable", "--nodes=3", "--cpus-per-task=1", "--output=\(output)"] + options
                           + [Self.script("slurm/srdpr.sbatch")] + (try parameters(name, updates: updates)),
                           environment: jobEnvironment.merging(environment) { $1 })
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Submits like `submit`, waits for the job to leave the queue and returns its output.
    func submitAndWait(_ name: String, seconds: Double = 60) throws -> (job: String, output: String) {
        let job = try submit(name)
        XCTAssertTrue(waitUntil(seconds: seconds) { jobState(job).isEmpty }, "job \(job) does not end")
        return (job, jobOutput(name, job))
    }

    /// The job's output file (all its runs: srdpr.sbatch appends).
    func jobOutput(_ name: String, _ job: String) -> String {
        guard let url = Self.work?.appendingPathComponent("\(name)-\(job).out") else { return "" }
        return (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    }

    /// squeue's state of the job ("" once it has left the queue).
    func jobState(_ job: String) -> String {
        ((try? onHost(0, ["squeue", "-h", "-j", job, "-o", "%T"]))?.stdout ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// sinfo's state of a node.
    func nodeState(_ node: Int) -> String {
        ((try? onHost(0, ["sinfo", "-h", "-n", "node\(node)", "-o", "%T"]))?.stdout ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func waitUntil(seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while deadline.timeIntervalSinceNow > 0 {
            if try condition() { return true }
            usleep(200_000)
        }
        return try condition()
    }

    /// The uninterrupted Slurm run (3 nodes, 1 CPU per task) that the crash test's resumed run must equal bit for bit.
    /// Returns the job's id.
    @discardableResult
    func uninterruptedSlurmRun() throws -> String {
        if let done = Self.uninterruptedJob { return done }
        let (job, output) = try submitAndWait("slurm", seconds: 180)
        XCTAssertTrue(output.contains("coordinator exit status 0, workers' 0"), output)
        Self.uninterruptedJob = job
        return job
    }

    // MARK: Slurm

    /// Must show 1: `sbatch --nodes=3 cluster/slurm/srdpr.sbatch` runs the job across the three
    /// slurmd hosts; ranks come from SLURM_PROCID, threads from --cpus-per-task.
    func testSlurmJobMatchesOneProcess() throws {
        _ = try requireCluster()
        let text = jobOutput("slurm", try uninterruptedSlurmRun())
        for rank in 0..<3 {
            XCTAssertTrue(text.contains("worker: rank \(rank) from SLURM_PROCID, world size 3 from SLURM_NTASKS (Slurm srun)"), text)
            XCTAssertTrue(text.contains("rank \(rank): ready (world 3, 1 thread(s))"), "SLURM_CPUS_PER_TASK=1 is the worker's threads:\n\(text)")
        }
        XCTAssertTrue(text.contains("srdpr.sbatch: 3 node(s) run srdpr \(SoftwareVersion.current)"), text)
        XCTAssertTrue(text.contains("coordinator: ring links: 2->0 TCP, 0->1 TCP, 1->2 TCP"), text)
        for node in 0..<3 { XCTAssertTrue(text.contains("registered from node\(node) pid"), text) }
        try assertLossesMatchOneProcess("slurm")
    }

    /// Must show 2: node2 crashes (its slurmd and everything on it killed) after the checkpoint of
    /// step 3: every srdpr process exits within the heartbeat timeout naming rank 2; Slurm marks
    /// the node down and requeues the job (--requeue); once the node is back the job runs again,
    /// srdpr.sbatch resumes from the newest checkpoint, and the final weights equal the
    /// uninterrupted run's bit for bit.
    func testSlurmNodeCrashStopsEveryProcessAndTheRequeuedJobEndsBitIdentical() throws {
        let cluster = try requireCluster()
        try uninterruptedSlurmRun()
        let reference = try run("slurm")
        let job = try submit("crash", options: ["--requeue"], environment: ["SRDPR_FAULT_STEP_DELAY_MS": "400"])
        let third = try run("crash").appendingPathComponent("checkpoints/dpr_biencoder.3")
        XCTAssertTrue(try waitUntil(seconds: 120) { FileManager.default.fileExists(atPath: third.path) }, jobOutput("crash", job))
        usleep(500_000)
        let crash = ClusterScript.run([Self.script("testcluster/node.sh"), cluster.path, "2", "crash"])
        XCTAssertEqual(crash.status, 0, crash.stderr)
        let crashed = Date()
        let ended = try waitUntil(seconds: Self.timeout + 10) { srdprProcesses(hosts: [0, 1]).isEmpty }
        let took = Date().timeIntervalSince(crashed)
        XCTAssertTrue(ended, "srdpr processes still run \(took) s after the crash: \(srdprProcesses(hosts: [0, 1]))")
        XCTAssertLessThan(took, Self.timeout + 5, "every process exits within the heartbeat timeout (\(Self.timeout) s)")
        print("node crash: every srdpr process ended \(String(format: "%.1f", took)) s after it (heartbeat timeout \(Self.timeout) s)")
        let first = jobOutput("crash", job)
        XCTAssertTrue(first.contains("rank 2"), first)
        XCTAssertTrue(first.contains("model_file=\(third.path)") || first.contains("dpr_biencoder."), first)

        // Slurm notices the node is gone (SlurmdTimeout), ends the job with NODE_FAIL and requeues it.
        XCTAssertTrue(waitUntil(seconds: 60) { nodeState(2).hasPrefix("down") }, "node2 is \(nodeState(2))")
        print("node crash: Slurm marked node2 down \(String(format: "%.0f", Date().timeIntervalSince(crashed))) s after the crash")
        let boot = ClusterScript.run([Self.script("testcluster/node.sh"), cluster.path, "2", "boot"])
        XCTAssertEqual(boot.status, 0, boot.stderr)
        let booted = Date()
        XCTAssertTrue(waitUntil(seconds: 150) { jobState(job).isEmpty }, "the requeued job does not end: \(jobState(job))")
        print("node crash: the requeued job ended \(String(format: "%.0f", Date().timeIntervalSince(booted))) s after node2 was booted again")
        let all = jobOutput("crash", job)
        XCTAssertTrue(all.contains("(restart 1)"), "the job was requeued:\n\(all)")
        // Why Slurm requeued it: slurmctld logs the node failure for the job whatever the timing;
        // srun adds "DUE TO NODE FAILURE" to the job's output only when it still runs as node2 is
        // marked down (under load every process may already have ended on the heartbeat timeout).
        let controller = (try? String(contentsOf: cluster.appendingPathComponent("slurm/slurmctld.log"), encoding: .utf8)) ?? ""
        let jobLines = controller.split(separator: "\n").filter { $0.contains("JobId=\(job)") }.joined(separator: "\n")
        print("node crash: slurmctld on the job:\n\(jobLines)\nsrun's DUE TO NODE FAILURE line: \(all.contains("DUE TO NODE FAILURE"))")
        XCTAssertTrue(all.contains("DUE TO NODE FAILURE") || jobLines.contains("due to failure of node node2"), "\(jobLines)\n\(all)")
        let resumed = "resume=latest: resuming from \(try run("crash").path)/checkpoints/dpr_biencoder."
        XCTAssertTrue(all.contains(resumed), all)
        XCTAssertTrue(all.contains("coordinator exit status 0, workers' 0"), all)
        let a = try TrainFixture.floatSections(run("crash").appendingPathComponent("checkpoints/dpr_biencoder.6"))
        let b = try TrainFixture.floatSections(reference.appendingPathComponent("checkpoints/dpr_biencoder.6"))
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        for (name, values) in a { XCTAssertEqual(values, b[name], "\(name) differs from the uninterrupted run after the requeue") }
    }

    /// Only node2's slurmd killed (its job step and worker live on): the job trains on until Slurm
    /// declares the node down (SlurmdTimeout), then cancels it with NODE_FAIL: SIGTERM to the
    /// processes it still reaches, the coordinator writes a checkpoint and names it, its stop order
    /// ends every worker, node2's too; the job is requeued and, with node2 back, resumes from that
    /// checkpoint (then cancelled here: the crash test above shows a resumed run ends bit-identical).
    func testSlurmdKilledAloneTheJobIsCheckpointedRequeuedAndResumed() throws {
        let cluster = try requireCluster()
        let job = try submit("slurmd", updates: 200, options: ["--requeue"], environment: ["SRDPR_FAULT_STEP_DELAY_MS": "300"])
        let third = try run("slurmd").appendingPathComponent("checkpoints/dpr_biencoder.3")
        XCTAssertTrue(waitUntil(seconds: 120) { FileManager.default.fileExists(atPath: third.path) }, jobOutput("slurmd", job))
        let pids = try Command.run(URL(fileURLWithPath: "/usr/sbin/ip"), ["netns", "pids", "\(Self.prefix)-h2"]).stdout.split(separator: "\n")
        let slurmd = pids.compactMap { Int32($0) }.filter {
            ((try? String(contentsOfFile: "/proc/\($0)/comm", encoding: .utf8)) ?? "").hasPrefix("slurmd")
        }
        XCTAssertEqual(slurmd.count, 1, "node2's slurmd")
        for pid in slurmd { kill(pid, SIGKILL) }
        let killed = Date()
        XCTAssertTrue(waitUntil(seconds: 90) { jobState(job) == "PENDING" && srdprProcesses(hosts: [0, 1, 2]).isEmpty },
                      "state \(jobState(job)), still running: \(srdprProcesses(hosts: [0, 1, 2]))\n\(jobOutput("slurmd", job))")
        print("slurmd killed: job cancelled by Slurm and requeued, every srdpr process ended, \(String(format: "%.0f", Date().timeIntervalSince(killed))) s after")
        let first = jobOutput("slurmd", job)
        XCTAssertTrue(first.contains("DUE TO NODE FAILURE"), first)
        let marker = "interrupted (SIGTERM): checkpoint "
        let start = try XCTUnwrap(first.range(of: marker), first).upperBound
        let checkpoint = String(first[start...].prefix { $0 != " " })
        // Rank 2's lines (and exit status) may not reach the output (its node's slurmd is gone and srun
        // gives up on it); that its process ended too was checked above, on node2 itself.
        for rank in 0..<2 { XCTAssertTrue(first.contains("rank \(rank): job aborted by the coordinator: interrupted (SIGTERM)"), first) }

        let node = Self.script("testcluster/node.sh")
        XCTAssertEqual(ClusterScript.run([node, cluster.path, "2", "crash"]).status, 0)
        XCTAssertEqual(ClusterScript.run([node, cluster.path, "2", "boot"]).status, 0)
        let resumed = "resumed from \(checkpoint) at step "
        XCTAssertTrue(waitUntil(seconds: 120) { jobOutput("slurmd", job).contains(resumed) }, jobOutput("slurmd", job))
        XCTAssertTrue(jobOutput("slurmd", job).contains("(restart 1)"), jobOutput("slurmd", job))
        XCTAssertEqual(try onHost(0, ["scancel", job]).status, 0)
        XCTAssertTrue(waitUntil(seconds: 60) { jobState(job).isEmpty && srdprProcesses(hosts: [0, 1, 2]).isEmpty },
                      "\(jobState(job)) \(srdprProcesses(hosts: [0, 1, 2]))")
    }

    /// scancel: SIGTERM to every process of the job; the coordinator writes a checkpoint, names it,
    /// and every process stops.
    func testScancelCheckpointsAndStopsEveryProcess() throws {
        _ = try requireCluster()
        let job = try submit("cancel", updates: 200, environment: ["SRDPR_FAULT_STEP_DELAY_MS": "300"])
        XCTAssertTrue(try waitUntil(seconds: 120) { jobOutput("cancel", job).contains("step 3/200") }, jobOutput("cancel", job))
        let cancel = try onHost(0, ["scancel", job])
        XCTAssertEqual(cancel.status, 0, cancel.stderr)
        XCTAssertTrue(try waitUntil(seconds: 30) { jobState(job).isEmpty }, jobOutput("cancel", job))
        XCTAssertTrue(try waitUntil(seconds: 10) { srdprProcesses(hosts: [0, 1, 2]).isEmpty }, srdprProcesses(hosts: [0, 1, 2]).description)
        let output = jobOutput("cancel", job)
        let marker = "interrupted (SIGTERM): checkpoint "
        let start = try XCTUnwrap(output.range(of: marker), output).upperBound
        let path = String(output[start...].prefix { $0 != " " })
        XCTAssertTrue(output.contains("resume with model_file=\(path)"), output)
        for rank in 0..<3 {
            XCTAssertTrue(output.contains("rank \(rank): job aborted by the coordinator: interrupted (SIGTERM)"), output)
        }
        let inspect = try Command.srdpr(["inspect-checkpoint", path])
        XCTAssertEqual(inspect.status, 0, inspect.stdout + inspect.stderr)
    }

    // MARK: ssh

    /// Must show 1 over ssh: launch-ssh.sh on node0 starts one worker per host of the host file.
    func testSshLaunchMatchesOneProcess() throws {
        let cluster = try requireCluster()
        let r = try onHost(0, [Self.script("launch-ssh.sh"), cluster.appendingPathComponent("hostfile").path,
                               "--coordinator-host", Self.address(0), "--threads", "1", "--heartbeat-timeout", "10"] + (try parameters("ssh")),
                           environment: ["SRDPR_BIN": Command.srdprBinary.path, "SRDPR_LOCAL_BIN": Command.srdprBinary.path,
                                         "SRDPR_SSH_CONFIG": cluster.appendingPathComponent("ssh_config").path])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("launch-ssh.sh: 3 host(s) answer, all with srdpr \(SoftwareVersion.current)"), r.stdout)
        for node in 0..<3 { XCTAssertTrue(r.stdout.contains("registered from node\(node)"), r.stdout) }
        try assertLossesMatchOneProcess("ssh")
    }

    // MARK: An index across the hosts

    /// `srdpr index --threads 1` in one process: what the launchers' index jobs must equal byte for byte.
    func oneProcessIndex() throws -> (corpus: String, files: [Data]) {
        let (corpus, output) = try oneProcessRun("index", output: "index-one", done: "/meta.json") { corpus, output in
            Array(indexOptions(corpus: corpus, output: output).dropLast(2))
        }
        return (corpus, try indexFiles(output))
    }

    /// Runs `srdpr COMMAND` once in one process on the small retrieval corpus into `output` (in the
    /// class's work directory), unless an earlier test left `output + done`: the reference the launched
    /// jobs must equal. Returns the corpus path and the output path.
    func oneProcessRun(_ command: String, output name: String, done: String,
                       options: (_ corpus: String, _ output: String) -> [String]) throws -> (corpus: String, output: String) {
        let work = try XCTUnwrap(Self.work)
        let (corpus, _) = try RetrievalData.small(work, questions: 12, distractors: 60)
        let output = work.appendingPathComponent(name).path
        if !FileManager.default.fileExists(atPath: output + done) {
            let r = try Command.srdpr([command] + options(corpus, output))
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        return (corpus, output)
    }

    func indexOptions(corpus: String, output: String) -> [String] {
        ["--model", Fixtures.url("tiny-bert").path, "--max-length", "64", "--threads", "1", "--corpus", corpus, "--output", output,
         "--chunk-rows", "4", "--shard-chunks", "1"]  // the last two only across hosts
    }

    func indexFiles(_ index: String) throws -> [Data] {
        try ["embeddings.f32", "ids.jsonl", "meta.json"].map { try Data(contentsOf: URL(fileURLWithPath: index + "/" + $0)) }
    }

    /// `launch-ssh.sh HOSTFILE index ...`: an index-worker per host, the coordinator on node0 writes the index.
    func testSshLaunchedIndexMatchesOneProcess() throws {
        let cluster = try requireCluster()
        let (corpus, reference) = try oneProcessIndex()
        let output = try run("index-ssh").path
        let r = try onHost(0, [Self.script("launch-ssh.sh"), cluster.appendingPathComponent("hostfile").path,
                               "--coordinator-host", Self.address(0), "--threads", "1", "--heartbeat-timeout", "10", "index"]
                           + indexOptions(corpus: corpus, output: output),
                           environment: ["SRDPR_BIN": Command.srdprBinary.path, "SRDPR_LOCAL_BIN": Command.srdprBinary.path,
                                         "SRDPR_SSH_CONFIG": cluster.appendingPathComponent("ssh_config").path])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        for node in 0..<3 { XCTAssertTrue(r.stderr.contains("index: rank \(node) registered from node\(node)"), r.stdout + r.stderr) }
        try assertSshStartedIndex(output, equals: reference)
    }

    /// ids.jsonl and meta.json byte for byte, the embeddings within an ulp: ssh starts the workers
    /// with sshd's clean environment, where this machine's OPENBLAS_CORETYPE (which the one-process
    /// reference and srun's tasks inherit) is not, so OpenBLAS picks another sgemm kernel and some
    /// floats move by an ulp; hosts with one environment give the same bytes (the Slurm test and
    /// IndexAcrossHostsTests).
    func assertSshStartedIndex(_ output: String, equals reference: [Data]) throws {
        let got = try indexFiles(output)
        XCTAssertEqual(got[1], reference[1], "ids.jsonl byte for byte")
        XCTAssertEqual(got[2], reference[2], "meta.json byte for byte")
        let u: [Float] = got[0].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let v: [Float] = reference[0].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(u.count, v.count)
        XCTAssertLessThanOrEqual(zip(u, v).map { abs($0 - $1) }.max() ?? 0, 2e-6)
    }

    /// `sbatch cluster/slurm/srdpr.sbatch index ...`: an index-worker per node (rank from SLURM_PROCID).
    func testSlurmIndexJobMatchesOneProcess() throws {
        _ = try requireCluster()
        let (corpus, reference) = try oneProcessIndex()
        let output = try run("index-slurm").path
        let text = try slurmIndexWorkerJob("index-slurm", ["index"] + indexOptions(corpus: corpus, output: output))
        for rank in 0..<3 {
            XCTAssertTrue(text.contains("index-worker: rank \(rank) from SLURM_PROCID, world size 3 from SLURM_NTASKS (Slurm srun)"), text)
        }
        XCTAssertEqual(try indexFiles(output), reference, "embeddings.f32, ids.jsonl and meta.json byte for byte")
    }

    /// `sbatch --nodes=3 srdpr.sbatch ARGUMENTS` (an index-worker job: `index ...`, `encode ...`,
    /// `mine-hard-negatives ...`) from node0, its log in `name-JOB.out`: it ends well; returns the log.
    func slurmIndexWorkerJob(_ name: String, _ arguments: [String]) throws -> String {
        let r = try onHost(0, ["sbatch", "--parsable", "--nodes=3", "--cpus-per-task=1", "--output=\(try run(name).path)-%j.out",
                               Self.script("slurm/srdpr.sbatch")] + arguments, environment: jobEnvironment)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let job = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(waitUntil(seconds: 90) { jobState(job).isEmpty }, "job \(job) does not end")
        let text = jobOutput(name, job)
        XCTAssertTrue(text.contains("srdpr.sbatch: coordinator exit status 0, workers' 0"), text)
        return text
    }

    /// Before anything starts, launch-ssh.sh names a host that refuses ssh and one that lacks the
    /// binary (node2's sshd restarted in a mount namespace that hides it).
    /// Runs `body` while node2's daemons (sshd, slurmd) run in a mount namespace where the srdpr
    /// binary's directory is an empty file system: a host without the binary, or with `fakeVersion`
    /// a stand-in `srdpr` there that says it is that version. Restores node2 after.
    func withNode2LackingTheBinary(fakeVersion: String? = nil, _ body: (URL) throws -> Void) throws {
        let cluster = try requireCluster()
        let binDirectory = Command.srdprBinary.deletingLastPathComponent().path
        let node = Self.script("testcluster/node.sh")
        XCTAssertEqual(ClusterScript.run([node, cluster.path, "2", "crash"]).status, 0)
        defer {
            _ = ClusterScript.run([node, cluster.path, "2", "crash"])
            _ = ClusterScript.run([node, cluster.path, "2", "boot"])
            XCTAssertTrue(waitUntil(seconds: 30) { nodeState(2).hasPrefix("idle") }, "node2 is \(nodeState(2)) after its boot")
        }
        let fake = fakeVersion.map { "printf \"#!/bin/sh\\necho \($0)\\n\" > \"$0/srdpr\" && chmod +x \"$0/srdpr\" && " } ?? ""
        let hidden = ClusterScript.run(["-c", "exec unshare -m --propagation private /bin/sh -c "
                                        + "'mount -t tmpfs -o size=1m srdpr-hidden \"$0\" && \(fake)exec bash \"$1\" \"$2\" 2 boot' \"$@\"",
                                        "bash", binDirectory, node, cluster.path])
        XCTAssertEqual(hidden.status, 0, hidden.stderr)
        XCTAssertTrue(waitUntil(seconds: 30) { nodeState(2).hasPrefix("idle") }, "node2 is \(nodeState(2)) after its boot")
        try body(cluster)
    }

    /// srdpr.sbatch asks every node for its srdpr version first: a node without it is named and nothing starts.
    func testSlurmNamesANodeWithoutTheBinaryBeforeStarting() throws {
        try withNode2LackingTheBinary { _ in
            let output = try submitAndWait("nobinary").output
            XCTAssertTrue(output.contains("srdpr.sbatch: nothing started: these nodes lack srdpr at '\(Command.srdprBinary.path)'"), output)
            XCTAssertTrue(output.contains("  node2 missing"), output)
            XCTAssertFalse(output.contains("coordinator: listening"), output)
        }
    }

    /// Must show 4: a host whose srdpr is another version is named before anything starts, by
    /// srdpr.sbatch and by launch-ssh.sh (the coordinator also refuses such a worker when it
    /// registers: LaunchBadSetupTests).
    func testAHostWithAnotherVersionIsNamedBeforeStarting() throws {
        try withNode2LackingTheBinary(fakeVersion: "0.0.9") { cluster in
            let output = try submitAndWait("oldversion").output
            XCTAssertTrue(output.contains("or run another version than node0's \(SoftwareVersion.current)"), output)
            XCTAssertTrue(output.contains("  node2 0.0.9"), output)
            XCTAssertFalse(output.contains("coordinator: listening"), output)
            let r = try onHost(0, [Self.script("launch-ssh.sh"), cluster.appendingPathComponent("hostfile").path,
                                   "--coordinator-host", Self.address(0)] + (try parameters("oldversion-ssh")),
                               environment: ["SRDPR_BIN": Command.srdprBinary.path, "SRDPR_LOCAL_BIN": Command.srdprBinary.path,
                                             "SRDPR_SSH_CONFIG": cluster.appendingPathComponent("ssh_config").path])
            XCTAssertEqual(r.status, 2, r.stdout + r.stderr)
            XCTAssertTrue(r.stderr.contains("rank 2: host \(Self.address(2)) runs srdpr 0.0.9, this host \(SoftwareVersion.current)"), r.stderr)
            XCTAssertFalse(r.stdout.contains("coordinator: listening"), r.stdout)
        }
    }

    func testSshLaunchNamesBrokenHostsBeforeStarting() throws {
        try withNode2LackingTheBinary { cluster in
            // A host alias whose port nobody listens on: ssh is refused.
            let config = cluster.appendingPathComponent("ssh_config_broken")
            let base = try String(contentsOf: cluster.appendingPathComponent("ssh_config"), encoding: .utf8)
            try ("Host refusing\n    HostName \(Self.address(1))\n    Port 2222\n" + base).write(to: config, atomically: true, encoding: .utf8)
            let hostfile = cluster.appendingPathComponent("hostfile_broken")
            try "\(Self.address(0))\nrefusing \(Self.address(1))\n\(Self.address(2))\n".write(to: hostfile, atomically: true, encoding: .utf8)
            XCTAssertTrue(try waitUntil(seconds: 20) {
                try onHost(0, ["ssh", "-F", config.path, Self.address(2), "true"]).status == 0
            }, "node2's sshd does not answer")
            let r = try onHost(0, [Self.script("launch-ssh.sh"), hostfile.path, "--coordinator-host", Self.address(0)] + (try parameters("broken")),
                               environment: ["SRDPR_BIN": Command.srdprBinary.path, "SRDPR_LOCAL_BIN": Command.srdprBinary.path,
                                             "SRDPR_SSH_CONFIG": config.path])
            XCTAssertEqual(r.status, 2, r.stdout + r.stderr)
            XCTAssertTrue(r.stderr.contains("nothing started; 2 of 3 host(s) cannot run a worker"), r.stderr)
            XCTAssertTrue(r.stderr.contains("rank 1: host refusing refuses ssh or cannot be reached"), r.stderr)
            XCTAssertTrue(r.stderr.contains("rank 2: host \(Self.address(2)) has no srdpr at '\(Command.srdprBinary.path)'"), r.stderr)
            XCTAssertFalse(r.stdout.contains("coordinator: listening"), r.stdout)
        }
    }

    // MARK: mpirun

    /// launch-mpirun.sh's environment on the test cluster: srdpr's paths, Open MPI as root, over the hosts' sshd and subnet.
    func mpirunEnvironment(_ cluster: URL) -> [String: String] {
        ["SRDPR_BIN": Command.srdprBinary.path, "SRDPR_LOCAL_BIN": Command.srdprBinary.path,
         "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
         "OMPI_MCA_plm_rsh_agent": "ssh -F \(cluster.appendingPathComponent("ssh_config").path)",
         "OMPI_MCA_oob_tcp_if_include": "\(Self.subnet).0/24"]
    }

    /// Must show 1 under mpirun: `mpirun -n 3` (Open MPI, over the hosts' sshd) starts the workers,
    /// which take their ranks from OMPI_COMM_WORLD_RANK.
    func testMpirunWorkersMatchOneProcess() throws {
        let cluster = try requireCluster()
        let hosts = (0..<3).map(Self.address).joined(separator: ",")
        let r = try onHost(0, [Self.script("launch-mpirun.sh"), "--hosts", hosts, "--coordinator-host", Self.address(0),
                               "--heartbeat-timeout", "10"] + (try parameters("mpirun")),
                           environment: mpirunEnvironment(cluster))
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        for rank in 0..<3 {
            XCTAssertTrue((r.stdout + r.stderr).contains("worker: rank \(rank) from OMPI_COMM_WORLD_RANK, world size 3 from OMPI_COMM_WORLD_SIZE"),
                          r.stdout + r.stderr)
        }
        XCTAssertTrue(r.stdout.contains("coordinator: ring links: 2->0 TCP, 0->1 TCP, 1->2 TCP"), r.stdout)
        try assertLossesMatchOneProcess("mpirun")
    }

    /// `launch-mpirun.sh --hosts ... index ...`: `mpirun -n 3` starts one identical index-worker per
    /// host (ranks from OMPI_COMM_WORLD_RANK); the coordinator on node0 writes the one-process index.
    func testMpirunLaunchedIndexMatchesOneProcess() throws {
        let cluster = try requireCluster()
        let (corpus, reference) = try oneProcessIndex()
        let output = try run("index-mpirun").path
        try launchMpirun(cluster, ["index"] + indexOptions(corpus: corpus, output: output))
        try assertSshStartedIndex(output, equals: reference)  // mpirun starts the remote workers over ssh
    }

    /// `launch-mpirun.sh --hosts node0,node1,node2 ... ARGUMENTS` (an index-worker job: `index ...`,
    /// `encode ...`) from node0: it ends well and every index-worker took its rank from mpirun.
    func launchMpirun(_ cluster: URL, _ arguments: [String]) throws {
        let hosts = (0..<3).map(Self.address).joined(separator: ",")
        let r = try onHost(0, [Self.script("launch-mpirun.sh"), "--hosts", hosts, "--coordinator-host", Self.address(0),
                               "--threads", "1", "--heartbeat-timeout", "10"] + arguments,
                           environment: mpirunEnvironment(cluster))
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        for rank in 0..<3 {
            XCTAssertTrue((r.stdout + r.stderr).contains("index-worker: rank \(rank) from OMPI_COMM_WORLD_RANK, world size 3 from OMPI_COMM_WORLD_SIZE"),
                          r.stdout + r.stderr)
        }
    }

    // MARK: Embeddings across the hosts

    func encodeOptions(input: String, output: String) -> [String] {
        ["--model", Fixtures.url("tiny-bert").path, "--max-length", "64", "--threads", "1", "--input", input,
         "--output", output + ".npy", "--format", "npy", "--ids", output + ".ids", "--window", "4", "--shard-chunks", "1"]  // the last two only across hosts
    }

    /// `srdpr encode --threads 1` in one process on the index tests' corpus: (input, .npy, ids).
    func oneProcessEncode() throws -> (input: String, npy: Data, ids: Data) {
        let (input, output) = try oneProcessRun("encode", output: "encode-one", done: ".ids") { input, output in
            Array(encodeOptions(input: input, output: output).dropLast(2))
        }
        return (input, try Data(contentsOf: URL(fileURLWithPath: output + ".npy")), try Data(contentsOf: URL(fileURLWithPath: output + ".ids")))
    }

    /// `launch-mpirun.sh --hosts ... encode ...`: the same index-workers, told by the coordinator's
    /// job that it is an encode job; the coordinator on node0 writes the one-process matrix and ids
    /// (the floats within an ulp: mpirun starts them over ssh, see ``assertSshStartedIndex``).
    func testMpirunLaunchedEncodeMatchesOneProcess() throws {
        let cluster = try requireCluster()
        let (input, npy, ids) = try oneProcessEncode()
        let output = try run("encode-mpirun").path
        try launchMpirun(cluster, ["encode"] + encodeOptions(input: input, output: output))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: output + ".ids")), ids, "ids byte for byte")
        let got = try Data(contentsOf: URL(fileURLWithPath: output + ".npy"))
        XCTAssertEqual(got.prefix(128), npy.prefix(128), "the .npy header byte for byte")
        let u: [Float] = got.dropFirst(128).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let v: [Float] = npy.dropFirst(128).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(u.count, v.count)
        XCTAssertLessThanOrEqual(zip(u, v).map { abs($0 - $1) }.max() ?? 0, 2e-6)
    }

    /// `sbatch cluster/slurm/srdpr.sbatch encode ...`: an index-worker per node; the one-process bytes.
    func testSlurmEncodeJobMatchesOneProcess() throws {
        _ = try requireCluster()
        let (input, npy, ids) = try oneProcessEncode()
        let output = try run("encode-slurm").path
        let text = try slurmIndexWorkerJob("encode-slurm", ["encode"] + encodeOptions(input: input, output: output))
        XCTAssertTrue(text.contains("for an encode job"), text)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: output + ".npy")), npy, "the .npy matrix byte for byte")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: output + ".ids")), ids, "ids byte for byte")
    }

    /// `sbatch cluster/slurm/srdpr.sbatch mine-hard-negatives --model ...`: the passage index built by
    /// an index-worker per node, the questions on the first node; the mined samples, candidates
    /// and index equal one process's.
    func testSlurmDenseMiningMatchesOneProcess() throws {
        _ = try requireCluster()
        let work = try XCTUnwrap(Self.work)
        let faq = Fixtures.sharedData.appendingPathComponent("faq")
        func head(_ name: String, _ lines: Int) throws -> String {
            let path = work.appendingPathComponent("mine-" + name).path
            let text = try String(contentsOf: faq.appendingPathComponent(name), encoding: .utf8).split(separator: "\n").prefix(lines)
            try (text.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let samples = try head("train.jsonl", 8), qrels = try head("train_qrels.jsonl", 8), corpus = try head("corpus.jsonl", 200)
        func options(_ name: String) -> [String] {
            let output = work.appendingPathComponent(name).path
            return ["--model", Fixtures.url("tiny-bert").path, "--max-length", "64", "--threads", "1", "--input", samples,
                    "--qrels", qrels, "--corpus", corpus, "--output", output + ".jsonl", "--candidates", output + ".candidates",
                    "--index", output + "-index", "--num-negatives", "3", "--range-max", "30"]
        }
        func files(_ name: String) throws -> [Data] {
            let output = work.appendingPathComponent(name).path
            return try [output + ".jsonl", output + ".candidates", output + "-index/embeddings.f32", output + "-index/ids.jsonl"]
                .map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        }
        let one = try Command.srdpr(["mine-hard-negatives"] + options("mine-one"))
        XCTAssertEqual(one.status, 0, one.stderr)
        let text = try slurmIndexWorkerJob("mine-slurm", ["mine-hard-negatives"] + options("mine-slurm"))
        XCTAssertTrue(text.contains("for an index job"), text)
        for (name, (a, b)) in zip(["samples", "candidates", "embeddings.f32", "ids.jsonl"], zip(try files("mine-one"), try files("mine-slurm"))) {
            XCTAssertEqual(a, b, "\(name): the Slurm job differs from one process")
        }
    }
}

/// Runs a cluster script under bash and waits for it with waitpid. The scripts leave daemons
/// running (slurmd, sshd, munged), and Foundation's Process missed the exit of such a script
/// here (its bash stayed a zombie and waitUntilExit never returned), so these are spawned directly;
/// the output goes to a file.
enum ClusterScript {
    static func run(_ arguments: [String]) -> (status: Int32, stdout: String, stderr: String) {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("srdpr-cluster-script-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: log) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = (["/bin/bash"] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/bash", &actions, nil, argv, environ)
        guard spawned == 0 else { return (status: -1, stdout: "", stderr: "posix_spawn failed: \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        let exited = status & 0x7f == 0
        return (status: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), stdout: output, stderr: output)
    }
}
