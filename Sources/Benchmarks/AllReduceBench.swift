import Collectives
import Foundation

/// `srdpr bench allreduce`: ring all-reduce bus bandwidth among `world` processes on loopback,
/// measured like nccl-tests and ../shared/bench/torch_allreduce_anchor.py (Gloo): every timed
/// iteration starts after a barrier, its time is the slowest rank's, the median over iterations
/// is reported as algbw = bytes / time and busbw = algbw * 2(n-1)/n (GB = 1e9 bytes).
public enum AllReduceBench {
    public struct Settings: Sendable {
        public var world = 2
        /// Buffer sizes in MB of 2^20 bytes.
        public var sizesMB: [Double] = [1, 16, 64, 256]
        public var iterations = 5
        public var warmup = 1
        /// "tcp" (loopback, like the anchors) or "ipc" (Unix domain sockets, same host only: the
        /// abstract-namespace sockets that `--ring-transport auto` uses between ranks on one host).
        public var transport = "tcp"
        /// Timed all-gathers of a [64, 768] fp32 block (after 10 untimed ones).
        public var gatherIterations = 50
        public var communicator = ZMQCommunicator.Options()

        public init() {}

        /// The options children need to rebuild these settings.
        public var childArguments: [String] {
            ["--world", "\(world)", "--sizes-mb", sizesMB.map { String($0) }.joined(separator: ","),
             "--iters", "\(iterations)", "--warmup", "\(warmup)", "--transport", transport,
             "--chunk-kb", "\(communicator.chunkBytes / 1024)",
             "--zero-copy-min-kb", "\(communicator.zeroCopyMinimumBytes / 1024)",
             "--io-threads", "\(communicator.ioThreads)",
             "--socket-buffer-kb", "\(Int(communicator.socketBufferBytes) / 1024)",
             communicator.sharedMemoryLanes ? "--lanes" : "--no-lanes"]
        }
    }

    public enum BenchError: Error, CustomStringConvertible {
        case child(rank: Int, status: Int32, output: String)
        case wrongResult(sizeMB: Double, got: Float, expected: Float)

        public var description: String {
            switch self {
            case let .child(rank, status, output):
                return "bench rank \(rank) exited with status \(status)\(output.isEmpty ? "" : ": \(output)")"
            case let .wrongResult(sizeMB, got, expected):
                return "all-reduce of \(sizeMB) MB gave \(got), expected \(expected)"
            }
        }
    }

    /// Starts `world` copies of `executable` (each given `childArguments(rank, addresses)`),
    /// waits for them and returns rank 0's result with the run's context added.
    public static func runParent(settings: Settings, executable: URL,
                                 childArguments: (Int, [String]) -> [String]) throws -> [String: Any] {
        let loadBefore = loadAverage()
        let addresses: [String]
        if settings.transport == "ipc", RingTransport.localAddress() != nil {
            // What `--ring-transport auto` links ranks on one host with.
            addresses = (0..<settings.world).map { _ in RingTransport.localAddress()! }
        } else if settings.transport == "ipc" {
            let directory = FileManager.default.temporaryDirectory.path
            let tag = "\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
            addresses = (0..<settings.world).map { "ipc://\(directory)/srdpr-bench-\(tag)-\($0).sock" }
        } else {
            addresses = FreePorts.loopback(settings.world).map { "tcp://127.0.0.1:\($0)" }
        }
        defer {
            for address in addresses where address.hasPrefix("ipc://") { try? FileManager.default.removeItem(atPath: String(address.dropFirst(6))) }
        }
        var processes: [(Process, Pipe)] = []
        for rank in 0..<settings.world {
            let process = Process()
            process.executableURL = executable
            process.arguments = childArguments(rank, addresses)
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            processes.append((process, pipe))
        }
        // One failed rank stops the others at once instead of letting them time out.
        while processes.contains(where: { $0.0.isRunning }) {
            if processes.contains(where: { !$0.0.isRunning && $0.0.terminationStatus != 0 }) {
                for (process, _) in processes where process.isRunning { process.terminate() }
                break
            }
            usleep(20_000)
        }
        var outputs: [String] = []
        for (process, pipe) in processes {
            process.waitUntilExit()
            outputs.append(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        }
        for (rank, (process, _)) in processes.enumerated() where process.terminationStatus != 0 {
            throw BenchError.child(rank: rank, status: process.terminationStatus, output: outputs[rank])
        }
        guard let line = outputs[0].split(separator: "\n").last,
              var result = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw BenchError.child(rank: 0, status: 0, output: "no JSON result: \(outputs[0])")
        }
        result["loadavg_before"] = loadBefore
        result["loadavg_after"] = loadAverage()
        result["cpu_count"] = ProcessInfo.processInfo.activeProcessorCount
        return result
    }

    /// One rank of the benchmark; rank 0 returns the result, the others nil.
    public static func runRank(_ rank: Int, addresses: [String], settings: Settings,
                               log: (String) -> Void) throws -> [String: Any]? {
        var options = settings.communicator
        options.globalLossBufferSize = options.globalLossBufferSize.map { max($0, 64 * 768 * 4) }
        let n = settings.world
        let comm = try ZMQCommunicator(rank: rank, worldSize: n, addresses: addresses,
                                       jobID: "bench-allreduce", options: options)
        let expected = Float(n * (n + 1) / 2)
        var rows: [[String: Any]] = []
        var busbwBySize: [String: Double] = [:]
        for sizeMB in settings.sizesMB {
            let count = Int(sizeMB * 1_048_576) / 4
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            defer { buffer.deallocate() }
            var times: [Double] = []
            var correct = true
            for iteration in 0..<(settings.warmup + settings.iterations) {
                buffer.initialize(repeating: Float(rank + 1))
                try comm.barrier()
                let start = DispatchTime.now().uptimeNanoseconds
                try comm.allReduce(buffer, op: .sum)
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                for i in [0, count / 2, count - 1] where count > 0 && buffer[i] != expected {
                    correct = false
                    throw BenchError.wrongResult(sizeMB: sizeMB, got: buffer[i], expected: expected)
                }
                // The slowest rank's time counts, as in the Gloo anchor.
                let all = try comm.allGather(withUnsafeBytes(of: seconds.bitPattern.littleEndian) { Array($0) })
                let slowest = all.map { bytes in
                    Double(bitPattern: UInt64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }))
                }.max() ?? seconds
                if iteration >= settings.warmup { times.append(slowest) }
            }
            let sorted = times.sorted()
            let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2]
                : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
            let bytes = count * 4
            let algbw = Double(bytes) / median / 1e9
            let busbw = algbw * 2 * Double(n - 1) / Double(n)
            busbwBySize[String(format: "%g", sizeMB)] = round3(busbw)
            rows.append(["size_mb": sizeMB, "bytes": bytes, "median_s": round6(median),
                         "min_s": round6(sorted.first ?? 0), "max_s": round6(sorted.last ?? 0),
                         "algbw_GBps": round3(algbw), "busbw_GBps": round3(busbw), "correct": correct,
                         "times_s": times.map(round6)])
            if rank == 0 {
                log(String(format: "[allreduce] %8g MB  median %9.2f ms  algbw %6.3f GB/s  busbw %6.3f GB/s",
                           sizeMB, median * 1e3, algbw, busbw))
            }
        }
        // All-gather latency of one [64, 768] fp32 embedding block per rank, as the Gloo anchor reports.
        let embeddings = [UInt8](repeating: UInt8(rank), count: 64 * 768 * 4)
        var gatherTimes: [Double] = []
        for iteration in 0..<(10 + settings.gatherIterations) {
            try comm.barrier()
            let start = DispatchTime.now().uptimeNanoseconds
            let gathered = try comm.allGather(embeddings)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            guard gathered.enumerated().allSatisfy({ $0.element.count == embeddings.count && $0.element.first == UInt8($0.offset) }) else {
                throw BenchError.wrongResult(sizeMB: 0.1875, got: -1, expected: 0)
            }
            if iteration >= 10 { gatherTimes.append(seconds) }
        }
        gatherTimes.sort()
        let gatherMedianMicroseconds = (gatherTimes[gatherTimes.count / 2] * 1e6).rounded()
        if rank == 0 { log("[allgather] [64, 768] fp32 per rank: median \(gatherMedianMicroseconds) us (rank 0)") }
        try comm.barrier()
        guard rank == 0 else { return nil }
        let o = settings.communicator
        return ["bench": "srdpr_allreduce", "ok": true, "world": n, "iters": settings.iterations,
                "algorithm": "ring reduce-scatter + all-gather, pipelined chunks, ZeroMQ ROUTER/DEALER",
                "transport": settings.transport,
                "chunk_bytes": o.chunkBytes, "zero_copy_min_bytes": o.zeroCopyMinimumBytes,
                "io_threads": o.ioThreads, "socket_buffer_bytes": Int(o.socketBufferBytes),
                "shared_memory_lanes": settings.transport == "ipc" && o.sharedMemoryLanes,
                "allreduce": rows, "busbw_gbps": busbwBySize,
                "allgather": ["shape_per_rank": [64, 768], "bytes_per_rank": embeddings.count,
                              "iters": gatherTimes.count, "median_us": gatherMedianMicroseconds]]
    }

    static func loadAverage() -> [Double] {
        var loads = [Double](repeating: 0, count: 3)
        _ = getloadavg(&loads, 3)
        return loads.map(round3)
    }

    private static func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
    private static func round6(_ x: Double) -> Double { (x * 1e6).rounded() / 1e6 }
}
