import ArgumentParser

/// `srdpr bench ...`: throughput benchmarks; each prints one JSON line (see Benchmarks/).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Throughput benchmarks (one JSON line of results each).",
        subcommands: [BenchTokenizer.self, BenchTrainStep.self])
}
