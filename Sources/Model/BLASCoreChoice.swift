import CKernels
import Foundation

/// Which OpenBLAS kernels to ask for when OpenBLAS's own choice wastes the CPU.
///
/// OpenBLAS (a DYNAMIC_ARCH build, as Debian's) picks its kernel family when the library loads,
/// from the CPU's model number. A CPU newer than the library gets the generic x86-64 fallback:
/// Debian 12's OpenBLAS 0.3.21 on an Intel Xeon of family 6 model 207 (Emerald Rapids, with AVX-512)
/// runs its "Prescott" SSE3 kernels, 2.4-6.6 times slower sgemm than its "SkylakeX" AVX-512 ones
/// there. OPENBLAS_CORETYPE overrides the choice, but only before the library loads, so srdpr
/// restarts itself with it set (`restartWithBetterKernelsIfNeeded`). A choice OpenBLAS made
/// knowingly (an AVX2 family, or any OPENBLAS_CORETYPE the user set) is never overridden.
public enum BLASCoreChoice {
    /// OpenBLAS's x86 kernel families without AVX2: its generic fallback (Prescott) and the older CPUs'.
    static let familiesWithoutAVX2: Set<String> = [
        "katmai", "coppermine", "northwood", "prescott", "banias", "core2", "penryn", "dunnington", "nehalem",
        "atom", "sandybridge", "opteron", "opteron_sse3", "barcelona", "bobcat", "bulldozer", "piledriver",
        "steamroller", "excavator",
    ]

    /// The family to ask for instead of `current` on a CPU with these features, or nil to keep
    /// OpenBLAS's choice: only a family without AVX2 on a CPU that has AVX2 is replaced.
    public static func replacement(for current: String, avx512: Bool, avx2: Bool) -> String? {
        guard familiesWithoutAVX2.contains(current.lowercased()) else { return nil }
        if avx512 { return "SkylakeX" }
        if avx2 { return "Haswell" }
        return nil
    }

    /// The variable naming the family OpenBLAS chose on its own before srdpr restarted with another.
    public static let replacedVariable = "SRDPR_OPENBLAS_REPLACED_CORE"

    /// The family OpenBLAS had chosen when srdpr asked for another one (nil: OpenBLAS's or the user's choice runs).
    public static var replacedCore: String? { ProcessInfo.processInfo.environment[replacedVariable] }

    /// Who chose the kernels running: "openblas", "OPENBLAS_CORETYPE" (the user), or "srdpr (OpenBLAS chose X)".
    public static var chosenBy: String {
        if let replacedCore { return "srdpr (OpenBLAS chose \(replacedCore))" }
        return ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] != nil ? "OPENBLAS_CORETYPE" : "openblas"
    }

    /// First thing in `main`, before any thread, file or socket: when OpenBLAS runs a family without
    /// AVX2 on a CPU with AVX2 and nobody set OPENBLAS_CORETYPE, re-executes this program (same
    /// arguments, same process id, so launchers such as srun or mpirun see nothing) with
    /// OPENBLAS_CORETYPE set. Returns only when nothing needs changing or the exec failed.
    public static func restartWithBetterKernelsIfNeeded(warn: (String) -> Void) {
        let environment = ProcessInfo.processInfo.environment
        guard environment["OPENBLAS_CORETYPE"] == nil else { return }
        let current = BLASKernels.coreName
        guard let better = replacement(for: current, avx512: srdpr_cpu_has_avx512_skylake() != 0,
                                       avx2: srdpr_cpu_has_avx2_fma() != 0) else { return }
        setenv("OPENBLAS_CORETYPE", better, 1)
        setenv(replacedVariable, current, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        let reason = String(cString: strerror(errno))
        unsetenv("OPENBLAS_CORETYPE")
        unsetenv(replacedVariable)
        warn("srdpr: OpenBLAS runs its \(current) kernels on this CPU, which has \(better == "SkylakeX" ? "AVX-512" : "AVX2"); "
            + "restarting with OPENBLAS_CORETYPE=\(better) failed (\(reason)). Set OPENBLAS_CORETYPE=\(better) yourself "
            + "for several times faster matrix products.")
    }
}
