import ArgumentParser
import Benchmarks
import Collectives
import Foundation

/// `srdpr bench allreduce`: starts `--world` ranks as child processes of this executable on
/// loopback and reports the ring all-reduce bus bandwidth per buffer size.
struct BenchAllReduce: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "Ring all-reduce bus bandwidth among local processes (busbw = algbw * 2(n-1)/n).")

    @Option(help: "Number of ranks (processes).") var world = 2
    @Option(name: .customLong("sizes-mb"), help: "Comma-separated buffer sizes in MB (2^20 bytes).") var sizesMB = "1,16,64,256"
    @Option(name: .customLong("iters"), help: "Timed iterations per size (median reported).") var iterations = 5
    @Option(help: "Untimed warm-up iterations per size.") var warmup = 1
    @Option(name: .customLong("chunk-kb"), help: "Pipelined chunk size in KiB.") var chunkKB = 512
    @Option(name: .customLong("zero-copy-min-kb"), help: "Send chunks of at least this many KiB without copying.") var zeroCopyMinKB = 32
    @Option(name: .customLong("io-threads"), help: "libzmq I/O threads per process.") var ioThreads = 1
    @Option(name: .customLong("socket-buffer-kb"), help: "Kernel socket buffer size in KiB (0: system default).") var socketBufferKB = 0
    @Option(help: """
        auto: what ranks on one host use in training (ipc where available); tcp: loopback TCP, as the anchors; \
        ipc: Unix domain sockets, with shared-memory lanes unless --no-lanes.
        """) var transport = "auto"
    @Flag(name: .customLong("lanes"), inversion: .prefixedNo, help: "With ipc: payloads through shared-memory lanes (as ranks on one host).")
    var lanes = true
    @Option(help: .hidden) var rank: Int?
    @Option(help: .hidden) var addresses: String?

    func validate() throws {
        guard world >= 1 else { throw ValidationError("--world must be at least 1, got \(world)") }
        guard iterations >= 1, warmup >= 0 else { throw ValidationError("--iters must be >= 1 and --warmup >= 0") }
        guard chunkKB >= 1 else { throw ValidationError("--chunk-kb must be at least 1") }
        guard ["auto", "tcp", "ipc"].contains(transport) else { throw ValidationError("--transport must be auto, tcp or ipc, got '\(transport)'") }
        _ = try sizes()
    }

    func sizes() throws -> [Double] {
        try sizesMB.split(separator: ",").map {
            guard let mb = Double($0.trimmingCharacters(in: .whitespaces)), mb >= 0 else {
                throw ValidationError("--sizes-mb: '\($0)' is not a size in MB")
            }
            return mb
        }
    }

    func run() throws {
        var settings = AllReduceBench.Settings()
        settings.world = world
        settings.sizesMB = try sizes()
        settings.iterations = iterations
        settings.warmup = warmup
        settings.transport = transport == "auto" ? (RingTransport.localAddress() != nil ? "ipc" : "tcp") : transport
        settings.communicator.chunkBytes = chunkKB * 1024
        settings.communicator.zeroCopyMinimumBytes = zeroCopyMinKB * 1024
        settings.communicator.ioThreads = ioThreads
        settings.communicator.socketBufferBytes = Int32(clamping: socketBufferKB * 1024)
        settings.communicator.receiveTimeout = 120
        settings.communicator.sharedMemoryLanes = lanes

        if let rank, let addresses {
            let list = addresses.split(separator: ",").map(String.init)
            if let result = try AllReduceBench.runRank(rank, addresses: list, settings: settings, log: { line in
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }) {
                BenchOutput.printJSONLine(result)
            }
            return
        }
        let executable = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        let result = try AllReduceBench.runParent(settings: settings, executable: executable) { rank, addresses in
            ["bench", "allreduce"] + settings.childArguments + ["--rank", "\(rank)", "--addresses", addresses.joined(separator: ",")]
        }
        BenchOutput.printJSONLine(result)
    }
}
