import CKernels

/// Which clone of the CKernels elementwise and attention kernels this process runs now (benchmark reports).
enum KernelClone {
    static var running: String {
        srdpr_kernels_use_avx512() != 0 ? "avx512" : srdpr_kernels_use_avx2() != 0 ? "avx2" : "baseline"
    }
}
