import CBLAS

/// OpenBLAS keeps one global thread pool; every matmul in the process uses it.
public enum BLASThreads {
    /// Sets how many threads OpenBLAS uses for each call (the `--threads` option of the CLI).
    public static func set(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    public static var current: Int { Int(openblas_get_num_threads()) }
}
