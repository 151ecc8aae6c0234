// The kernels with 8 lanes, compiled for AVX2 + FMA (called only when the CPU has both).
#if defined(__x86_64__) || defined(__i386__)
#define LANES 8
#define NAME(f) f##_avx2
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#include "kernels-body.h"
#include "attention-body.h"
#include "gemm-body.h"
#pragma clang attribute pop
#endif
