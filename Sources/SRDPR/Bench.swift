import ArgumentParser

/// `srdpr bench ...`: performance measurements, one JSON line on stdout each (the anchors to
/// compare with live in ../shared/bench, the side-by-side scripts in Benchmarks/).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure throughput; each subcommand prints one JSON line.",
        subcommands: [
            BenchDataset.self,
            BenchTokenizer.self,
            BenchAllReduce.self,
            BenchGradientAllReduce.self,
            BenchTrainStep.self,
            BenchTrainReal.self,
            BenchSearch.self,
            BenchMine.self,
            BenchAttention.self,
            BenchElementwise.self,
            BenchGemm.self,
            BenchBLASCore.self,
        ])
}
