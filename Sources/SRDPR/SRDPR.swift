import ArgumentParser
import Foundation
import JobContracts
import Model

/// The `srdpr` executable: subcommands only; the work happens in the libraries.
@main
struct SRDPR: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "srdpr",
        abstract: "Train dense passage retrievers with Stratified Ranking (SR-DPR) on CPUs.",
        version: SoftwareVersion.current,
        subcommands: [
            CreateDataset.self,
            MineHardNegatives.self,
            InspectDataset.self,
            Tokenize.self,
            DumpBatches.self,
            InitModel.self,
            Train.self,
            Report.self,
            CoordinatorCommand.self,
            WorkerCommand.self,
            IndexWorkerCommand.self,
            Export.self,
            Encode.self,
            Index.self,
            Search.self,
            Evaluate.self,
            InspectCheckpoint.self,
            InspectEvents.self,
            Bench.self,
        ])

    /// Before parsing: OpenBLAS's kernels are fixed when it loads, so a poor choice of its own
    /// (BLASCoreChoice) is corrected by restarting with OPENBLAS_CORETYPE set.
    static func main() {
        BLASCoreChoice.restartWithBetterKernelsIfNeeded { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        main(nil)
    }
}
