import ArgumentParser
import Benchmarks
import Foundation
import Model

/// `srdpr bench blas-core`: which OpenBLAS kernel family this process runs, and who chose it.
/// Scripts export the name (`--name`) as OPENBLAS_CORETYPE so that other programs linking
/// OpenBLAS (the test bundles, sgemm_anchor) run the same kernels as srdpr.
struct BenchBLASCore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blas-core",
        abstract: "The OpenBLAS kernel family srdpr runs here and who chose it (OpenBLAS, OPENBLAS_CORETYPE, or srdpr).")

    @Flag(help: "Print only the family's name (for OPENBLAS_CORETYPE).") var name = false

    func run() throws {
        let core = BLASKernels.coreName
        if name { return print(core) }
        BenchOutput.printJSONLine(["bench": "blas-core", "openblas_core": core, "chosen_by": BLASCoreChoice.chosenBy])
    }
}
