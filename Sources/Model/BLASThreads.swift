import CBLAS
import Foundation

/// OpenBLAS keeps one global thread pool; every matmul in the process uses it.
public enum BLASThreads {
    /// Sets how many threads OpenBLAS uses for each call (the `--threads` option of the CLI).
    public static func set(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// The `--threads` default of every command (train, encode, index, search, evaluate, ...):
    /// every core this process may run on (its CPU affinity: `taskset`, cpusets).
    public static var defaultCount: Int {
        // Linux: the Cpus_allowed mask of /proc/self/status (hex words separated by commas).
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") }) {
            let allowed = line.dropFirst("Cpus_allowed:".count).reduce(0) { count, digit in
                count + (digit.hexDigitValue ?? 0).nonzeroBitCount
            }
            if allowed > 0 { return allowed }
        }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    public static var current: Int { Int(openblas_get_num_threads()) }
}
