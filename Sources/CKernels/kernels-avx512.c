// The elementwise and attention kernels with 16 lanes, compiled for AVX-512 F, BW, DQ and VL (called
// only when the CPU has all four; F implies AVX2 + FMA here). Per element the same operations as the
// AVX2 clone (fused multiply-adds in both), so elementwise results and dropout masks are the same
// bits; only reductions across lanes (softmax sums, LayerNorm moments, dot products) add in another
// order. Why DQ: without it the dropout hashes' 64-bit multiplies are emulated, and dropout measured
// slower than the AVX2 clone (0.39 vs 0.35 ns per element; 0.12 with DQ and 8 hashes per zmm).
// The Linear product has its own AVX-512 kernel, not this file's.
#if defined(__x86_64__)
#define LANES 16
#define NAME(f) f##_avx512
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))), apply_to = function)
#include "kernels-body.h"
#include "attention-body.h"
#pragma clang attribute pop
#endif
