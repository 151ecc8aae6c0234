import CBLAS
import Foundation

/// OpenBLAS keeps one global thread pool; every matmul in the process uses it.
public enum BLASThreads {
    /// Sets how many threads OpenBLAS uses for each call (the `--threads` option of the CLI).
    public static func set(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// The `--threads` default of every command (train, encode, index, search, evaluate, ...):
    /// every core this process may run on.
    public static var defaultCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    public static var current: Int { Int(openblas_get_num_threads()) }
}
