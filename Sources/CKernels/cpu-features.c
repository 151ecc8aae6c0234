// What the CPU (and the OS, which must save the wider registers) supports: the kernels' dispatch
// (dispatch.c) and the OpenBLAS kernel family srdpr asks for (BLASCoreChoice.swift) both read it here.
#include "CKernels.h"

int srdpr_cpu_has_avx2_fma(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int srdpr_cpu_has_avx512_bw_dq_vl(void) {
#if defined(__x86_64__) || defined(__i386__)
    // __builtin_cpu_supports also checks that the OS saves the zmm registers (XCR0), as for ymm.
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

int srdpr_cpu_has_avx512_skylake(void) {
#if defined(__x86_64__) || defined(__i386__)
    // OpenBLAS's SkylakeX kernels use AVX-512 F, CD, BW, DQ and VL (the Skylake-SP set).
    return srdpr_cpu_has_avx512_bw_dq_vl() && __builtin_cpu_supports("avx512cd");
#else
    return 0;
#endif
}
