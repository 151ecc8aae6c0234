// Picks the AVX2 + FMA kernels when the CPU has both (checked once), else the baseline ones; the
// Linear product (srdpr_gemm_rows: gemm-avx512.c) and the elementwise and attention kernels
// (kernels-avx512.c) have a third clone, AVX-512, picked before AVX2.
#include "CKernels.h"

static int baselineForced = 0, avx2Forced = 0;

void srdpr_kernels_force_baseline(int force) { baselineForced = force; }
void srdpr_kernels_force_avx2(int force) { avx2Forced = force; }

int srdpr_kernels_use_avx2(void) {
#if defined(__x86_64__) || defined(__i386__)
    static int known = -1;
    if (known < 0) {
        known = srdpr_cpu_has_avx2_fma();
    }
    return known && !baselineForced;
#else
    return 0;
#endif
}

int srdpr_kernels_use_avx512(void) {
#if defined(__x86_64__)
    static int known = -1;
    if (known < 0) {
        // kernels-avx512.c is compiled for F, BW, DQ and VL (Skylake-SP and every later AVX-512 CPU has them).
        known = srdpr_cpu_has_avx512_bw_dq_vl();
    }
    return known && srdpr_kernels_use_avx2() && !avx2Forced;
#else
    return 0;
#endif
}

#if defined(__x86_64__) || defined(__i386__)
#define hasAVX2 srdpr_kernels_use_avx2
#define DISPATCH(f, ...) (hasAVX2() ? f##_avx2(__VA_ARGS__) : f##_baseline(__VA_ARGS__))
#else
#define DISPATCH(f, ...) f##_baseline(__VA_ARGS__)
#endif
// The kernels with an AVX-512 clone (kernels-avx512.c: all but the Linear product).
#if defined(__x86_64__)
#define DISPATCH_WIDE(f, ...) (srdpr_kernels_use_avx512() ? f##_avx512(__VA_ARGS__) : DISPATCH(f, __VA_ARGS__))
#else
#define DISPATCH_WIDE(f, ...) DISPATCH(f, __VA_ARGS__)
#endif

void srdpr_erf_avx512(float *out, const float *input, long count);
void srdpr_erf_avx2(float *out, const float *input, long count);
void srdpr_erf_baseline(float *out, const float *input, long count);
void srdpr_erf(float *out, const float *input, long count) { DISPATCH_WIDE(srdpr_erf, out, input, count); }

void srdpr_gelu_forward_avx512(float *out, const float *input, long count);
void srdpr_gelu_forward_avx2(float *out, const float *input, long count);
void srdpr_gelu_forward_baseline(float *out, const float *input, long count);
void srdpr_gelu_forward(float *out, const float *input, long count) { DISPATCH_WIDE(srdpr_gelu_forward, out, input, count); }

void srdpr_gelu_forward_derivative_avx512(float *out, float *derivative, const float *input, long count);
void srdpr_gelu_forward_derivative_avx2(float *out, float *derivative, const float *input, long count);
void srdpr_gelu_forward_derivative_baseline(float *out, float *derivative, const float *input, long count);
void srdpr_gelu_forward_derivative(float *out, float *derivative, const float *input, long count) { DISPATCH_WIDE(srdpr_gelu_forward_derivative, out, derivative, input, count); }

void srdpr_gelu_backward_avx512(float *dInput, const float *dOut, const float *input, long count);
void srdpr_gelu_backward_avx2(float *dInput, const float *dOut, const float *input, long count);
void srdpr_gelu_backward_baseline(float *dInput, const float *dOut, const float *input, long count);
void srdpr_gelu_backward(float *dInput, const float *dOut, const float *input, long count) { DISPATCH_WIDE(srdpr_gelu_backward, dInput, dOut, input, count); }

void srdpr_multiply_avx512(float *x, const float *y, long count);
void srdpr_multiply_avx2(float *x, const float *y, long count);
void srdpr_multiply_baseline(float *x, const float *y, long count);
void srdpr_multiply(float *x, const float *y, long count) { DISPATCH_WIDE(srdpr_multiply, x, y, count); }

void srdpr_multiply_sum_rows_avx512(float *x, const float *y, float *columnSums, long rows, long dim);
void srdpr_multiply_sum_rows_avx2(float *x, const float *y, float *columnSums, long rows, long dim);
void srdpr_multiply_sum_rows_baseline(float *x, const float *y, float *columnSums, long rows, long dim);
void srdpr_multiply_sum_rows(float *x, const float *y, float *columnSums, long rows, long dim) { DISPATCH_WIDE(srdpr_multiply_sum_rows, x, y, columnSums, rows, dim); }

void srdpr_add_avx512(float *out, const float *a, const float *b, long count);
void srdpr_add_avx2(float *out, const float *a, const float *b, long count);
void srdpr_add_baseline(float *out, const float *a, const float *b, long count);
void srdpr_add(float *out, const float *a, const float *b, long count) { DISPATCH_WIDE(srdpr_add, out, a, b, count); }

void srdpr_sum_rows_avx512(float *columnSums, const float *x, long rows, long dim);
void srdpr_sum_rows_avx2(float *columnSums, const float *x, long rows, long dim);
void srdpr_sum_rows_baseline(float *columnSums, const float *x, long rows, long dim);
void srdpr_sum_rows(float *columnSums, const float *x, long rows, long dim) { DISPATCH_WIDE(srdpr_sum_rows, columnSums, x, rows, dim); }

void srdpr_softmax_rows_avx512(float *scores, long rows, long length, const int32_t *keyMask);
void srdpr_softmax_rows_avx2(float *scores, long rows, long length, const int32_t *keyMask);
void srdpr_softmax_rows_baseline(float *scores, long rows, long length, const int32_t *keyMask);
void srdpr_softmax_rows(float *scores, long rows, long length, const int32_t *keyMask) { DISPATCH_WIDE(srdpr_softmax_rows, scores, rows, length, keyMask); }

void srdpr_softmax_backward_rows_avx512(float *grad, const float *probs, long rows, long length, float scale);
void srdpr_softmax_backward_rows_avx2(float *grad, const float *probs, long rows, long length, float scale);
void srdpr_softmax_backward_rows_baseline(float *grad, const float *probs, long rows, long length, float scale);
void srdpr_softmax_backward_rows(float *grad, const float *probs, long rows, long length, float scale) { DISPATCH_WIDE(srdpr_softmax_backward_rows, grad, probs, rows, length, scale); }

void srdpr_dropout_row_avx512(float *x, long count, uint64_t rowKey, float p, long start);
void srdpr_dropout_row_avx2(float *x, long count, uint64_t rowKey, float p, long start);
void srdpr_dropout_row_baseline(float *x, long count, uint64_t rowKey, float p, long start);
void srdpr_dropout_row(float *x, long count, uint64_t rowKey, float p, long start) { DISPATCH_WIDE(srdpr_dropout_row, x, count, rowKey, p, start); }

void srdpr_dropout_backward_where_kept_avx512(float *grad, const float *kept, long count, float scale);
void srdpr_dropout_backward_where_kept_avx2(float *grad, const float *kept, long count, float scale);
void srdpr_dropout_backward_where_kept_baseline(float *grad, const float *kept, long count, float scale);
void srdpr_dropout_backward_where_kept(float *grad, const float *kept, long count, float scale) { DISPATCH_WIDE(srdpr_dropout_backward_where_kept, grad, kept, count, scale); }

void srdpr_layernorm_forward_avx512(float *out, float *mean, float *rstd, const float *input, const float *gamma, const float *beta, long rows, long dim, float eps);
void srdpr_layernorm_forward_avx2(float *out, float *mean, float *rstd, const float *input, const float *gamma, const float *beta, long rows, long dim, float eps);
void srdpr_layernorm_forward_baseline(float *out, float *mean, float *rstd, const float *input, const float *gamma, const float *beta, long rows, long dim, float eps);
void srdpr_layernorm_forward(float *out, float *mean, float *rstd, const float *input, const float *gamma, const float *beta, long rows, long dim, float eps) { DISPATCH_WIDE(srdpr_layernorm_forward, out, mean, rstd, input, gamma, beta, rows, dim, eps); }

void srdpr_residual_layernorm_forward_avx512(float *out, float *sum, float *mean, float *rstd, const float *input, const float *residual, const float *gamma, const float *beta, long rows, long dim, float eps);
void srdpr_residual_layernorm_forward_avx2(float *out, float *sum, float *mean, float *rstd, const float *input, const float *residual, const float *gamma, const float *beta, long rows, long dim, float eps);
void srdpr_residual_layernorm_forward_baseline(float *out, float *sum, float *mean, float *rstd, const float *input, const float *residual, const float *gamma, const float *beta, long rows, long dim, float eps);
void srdpr_residual_layernorm_forward(float *out, float *sum, float *mean, float *rstd, const float *input, const float *residual, const float *gamma, const float *beta, long rows, long dim, float eps) { DISPATCH_WIDE(srdpr_residual_layernorm_forward, out, sum, mean, rstd, input, residual, gamma, beta, rows, dim, eps); }

void srdpr_layernorm_backward_input_avx512(float *dInput, const float *dOut, const float *input, const float *gamma, const float *mean, const float *rstd, long rows, long dim);
void srdpr_layernorm_backward_input_avx2(float *dInput, const float *dOut, const float *input, const float *gamma, const float *mean, const float *rstd, long rows, long dim);
void srdpr_layernorm_backward_input_baseline(float *dInput, const float *dOut, const float *input, const float *gamma, const float *mean, const float *rstd, long rows, long dim);
void srdpr_layernorm_backward_input(float *dInput, const float *dOut, const float *input, const float *gamma, const float *mean, const float *rstd, long rows, long dim) { DISPATCH_WIDE(srdpr_layernorm_backward_input, dInput, dOut, input, gamma, mean, rstd, rows, dim); }

void srdpr_layernorm_backward_parameters_avx512(float *dGamma, float *dBeta, const float *dOut, const float *input, const float *mean, const float *rstd, long rows, long dim);
void srdpr_layernorm_backward_parameters_avx2(float *dGamma, float *dBeta, const float *dOut, const float *input, const float *mean, const float *rstd, long rows, long dim);
void srdpr_layernorm_backward_parameters_baseline(float *dGamma, float *dBeta, const float *dOut, const float *input, const float *mean, const float *rstd, long rows, long dim);
void srdpr_layernorm_backward_parameters(float *dGamma, float *dBeta, const float *dOut, const float *input, const float *mean, const float *rstd, long rows, long dim) { DISPATCH_WIDE(srdpr_layernorm_backward_parameters, dGamma, dBeta, dOut, input, mean, rstd, rows, dim); }

void srdpr_adamw_avx512(float *parameters, float *gradients, float *m, float *v, long count, float gradientScale, float decayFactor, int decays, float oneMinusBeta1, float beta2, float oneMinusBeta2, float stepSize, float biasCorrection2Sqrt, float eps);
void srdpr_adamw_avx2(float *parameters, float *gradients, float *m, float *v, long count, float gradientScale, float decayFactor, int decays, float oneMinusBeta1, float beta2, float oneMinusBeta2, float stepSize, float biasCorrection2Sqrt, float eps);
void srdpr_adamw_baseline(float *parameters, float *gradients, float *m, float *v, long count, float gradientScale, float decayFactor, int decays, float oneMinusBeta1, float beta2, float oneMinusBeta2, float stepSize, float biasCorrection2Sqrt, float eps);
void srdpr_adamw(float *parameters, float *gradients, float *m, float *v, long count, float gradientScale, float decayFactor, int decays, float oneMinusBeta1, float beta2, float oneMinusBeta2, float stepSize, float biasCorrection2Sqrt, float eps) { DISPATCH_WIDE(srdpr_adamw, parameters, gradients, m, v, count, gradientScale, decayFactor, decays, oneMinusBeta1, beta2, oneMinusBeta2, stepSize, biasCorrection2Sqrt, eps); }

void srdpr_attention_forward_avx512(float *context, float *probabilities, const float *query, const float *key, const float *value, long length, long headDim, long stride, long qkvStride, float scale, const int32_t *keyMask, int dropout, uint64_t rowKey, float p, long head, float *scratch);
void srdpr_attention_forward_avx2(float *context, float *probabilities, const float *query, const float *key, const float *value, long length, long headDim, long stride, long qkvStride, float scale, const int32_t *keyMask, int dropout, uint64_t rowKey, float p, long head, float *scratch);
void srdpr_attention_forward_baseline(float *context, float *probabilities, const float *query, const float *key, const float *value, long length, long headDim, long stride, long qkvStride, float scale, const int32_t *keyMask, int dropout, uint64_t rowKey, float p, long head, float *scratch);
void srdpr_attention_forward(float *context, float *probabilities, const float *query, const float *key, const float *value, long length, long headDim, long stride, long qkvStride, float scale, const int32_t *keyMask, int dropout, uint64_t rowKey, float p, long head, float *scratch) { DISPATCH_WIDE(srdpr_attention_forward, context, probabilities, query, key, value, length, headDim, stride, qkvStride, scale, keyMask, dropout, rowKey, p, head, scratch); }

void srdpr_attention_backward_avx512(float *dQuery, float *dKey, float *dValue, const float *dContext, const float *probabilities, const float *query, const float *key, const float *value, long length, long headDim, long stride, long qkvStride, float scale, int dropout, uint64_t rowKey, float p, long head, float *scratch);
void srdpr_attention_backward_avx2(float *dQuery, float *dKey, float *dValue, const float *dContext, const float *probabilities, const float *query, const float *key, const float *value, long length, long headDim, long stride, long qkvStride, float scale, int dropout, uint64_t rowKey, float p, long head, float *scratch);
void srdpr_attention_backward_baseline(float *dQuery, float *dKey, float *dValue, const float *dContext, const float *probabilities, const float *query, const float *key, const float *value, long length, long headDim, long stride, long qkvStride, float scale, int dropout, uint64_t rowKey, float p, long head, float *scratch);
void srdpr_attention_backward(float *dQuery, float *dKey, float *dValue, const float *dContext, const float *probabilities, const float *query, const float *key, const float *value, long length, long headDim, long stride, long qkvStride, float scale, int dropout, uint64_t rowKey, float p, long head, float *scratch) { DISPATCH_WIDE(srdpr_attention_backward, dQuery, dKey, dValue, dContext, probabilities, query, key, value, length, headDim, stride, qkvStride, scale, dropout, rowKey, p, head, scratch); }

void srdpr_gemm_rows_avx2(float *out, const float *input, const float *packed, long rows, long inDim, long outDim);
void srdpr_gemm_rows_baseline(float *out, const float *input, const float *packed, long rows, long inDim, long outDim);
#if defined(__x86_64__)
void srdpr_gemm_rows_avx512(float *out, const float *input, const float *packed, long rows, long inDim, long outDim);
#endif
void srdpr_gemm_rows(float *out, const float *input, const float *packed, long rows, long inDim, long outDim) {
#if defined(__x86_64__)
    if (srdpr_kernels_use_avx512()) return srdpr_gemm_rows_avx512(out, input, packed, rows, inDim, outDim);
#endif
    DISPATCH(srdpr_gemm_rows, out, input, packed, rows, inDim, outDim);
}

#if defined(__x86_64__)
void srdpr_gemm_rows_gelu_avx512(float *out, float *derivative, const float *input, const float *packed, long rows,
                                 long inDim, long outDim);
#endif
void srdpr_gemm_rows_gelu(float *out, float *derivative, const float *input, const float *packed, long rows, long inDim,
                          long outDim) {
#if defined(__x86_64__)
    if (srdpr_kernels_use_avx512()) return srdpr_gemm_rows_gelu_avx512(out, derivative, input, packed, rows, inDim, outDim);
#endif
    // The other clones: the product, then one GELU pass over it (what the AVX-512 clone does tile by tile).
    srdpr_gemm_rows(out, input, packed, rows, inDim, outDim);
    if (derivative) srdpr_gelu_forward_derivative(out, derivative, out, rows * outDim);
    else srdpr_gelu_forward(out, out, rows * outDim);
}

long srdpr_gemm_tile_rows(void) {
    // gemm-avx512.c's TILE_ROWS, gemm-body.h's GEMM_TILE_ROWS of the AVX2 and baseline builds.
    return srdpr_kernels_use_avx512() ? 12 : srdpr_kernels_use_avx2() ? 6 : 2;
}

const char *srdpr_kernels_clone(void) {
    return srdpr_kernels_use_avx512() ? "avx512" : srdpr_kernels_use_avx2() ? "avx2" : "baseline";
}

long srdpr_attention_scratch(long length, long headDim) {
    // Padded to the widest (AVX-512) clone's register tile, 6 rows x 32 columns, so one allocation
    // serves every clone (tests switch clones at run time).
    long L = length, paddedLength = (L + 31) / 32 * 32, panels = L * ((headDim + 31) / 32 * 32);
    long block = 5120 > 6 * paddedLength ? 5120 : 6 * paddedLength;  // attention-body.h's ATTENTION_BLOCK_FLOATS
    long forward = headDim * paddedLength + panels + block;           // Kᵀ, V, one block of scores
    long backward = 2 * L * L + headDim * paddedLength + 3 * panels;  // dScores, dropped, Vᵀ, dContext, K, Q
    return forward > backward ? forward : backward;
}
