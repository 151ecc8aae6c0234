import ArgumentParser

/// The `srdpr` executable: subcommands only; the work happens in the libraries.
@main
struct SRDPR: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "srdpr",
        abstract: "Train dense passage retrievers with Stratified Ranking (SR-DPR) on CPUs.",
        version: "0.1.0",
        subcommands: [
            Tokenize.self,
            DumpBatches.self,
            Bench.self,
            Encode.self,
            CreateDataset.self,
            InspectDataset.self,
            Train.self,
            Export.self,
            InitModel.self,
            BenchDataset.self,
            InspectCheckpoint.self,
            InspectEvents.self,
        ])
}
