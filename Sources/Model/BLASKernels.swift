import CBLAS

/// Which kernels OpenBLAS runs. DYNAMIC_ARCH builds choose them when the library loads, from the
/// CPU or from OPENBLAS_CORETYPE (e.g. "Haswell" = AVX2, "SkylakeX"/"Cooperlake" = AVX-512);
/// benchmarks report it so numbers from different kernel choices are not compared unknowingly.
public enum BLASKernels {
    /// The kernel family OpenBLAS uses in this process, e.g. "Haswell" or "SkylakeX".
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }
}
