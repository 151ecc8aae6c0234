import CKernels

/// The clones of CKernels' elementwise and attention kernels a test can force in this process, so
/// every clone the CPU runs is checked here (not only the one the CPU would pick).
enum KernelBuild: String {
    case baseline, avx2, avx512

    /// Back to the CPU's choice.
    static func reset() {
        srdpr_kernels_force_baseline(0)
        srdpr_kernels_force_avx2(0)
    }

    static var hasAVX2: Bool {
        reset()
        return srdpr_kernels_use_avx2() != 0
    }

    static var hasAVX512: Bool {
        reset()
        return srdpr_kernels_use_avx512() != 0
    }

    func force() {
        srdpr_kernels_force_baseline(self == .baseline ? 1 : 0)
        srdpr_kernels_force_avx2(self == .avx2 ? 1 : 0)
    }

    /// The clones this CPU runs, baseline first; prints which are skipped and why.
    static func available(reportingTo test: String) -> [KernelBuild] {
        var builds: [KernelBuild] = [.baseline]
        if hasAVX2 { builds.append(.avx2) } else {
            print("\(test): SKIPPED the AVX2 and AVX-512 clones: this CPU has no AVX2+FMA; only the baseline kernels were checked")
        }
        if hasAVX512 { builds.append(.avx512) } else if hasAVX2 {
            print("\(test): SKIPPED the AVX-512 clone: this CPU has no AVX-512F; the baseline and AVX2 kernels were checked")
        }
        return builds
    }
}
