#ifndef SRDPR_CKERNELS_H
#define SRDPR_CKERNELS_H
#include <stdint.h>

// Elementwise and row-wise kernels of the model layers, over flat fp32 buffers, 16, 8 or 4 lanes at a
// time. Each function is compiled three times (AVX-512, AVX2+FMA and baseline x86-64; the Linear
// product has its own kernels) and the loader picks the clone the CPU supports, so one binary runs
// everywhere and uses the widest vectors that exist. Callers split rows over threads; the kernels
// themselves never start threads.

/// 1 when the CPU has AVX2 + FMA and no test forced the baseline: the AVX2 kernels run where no
/// AVX-512 clone does (srdpr_kernels_use_avx512).
int srdpr_kernels_use_avx2(void);
/// Tests: run the baseline kernels even on an AVX2 CPU (force = 1) or go back to the CPU's choice (0).
void srdpr_kernels_force_baseline(int force);
/// 1 when the AVX-512 clones run (the CPU has AVX-512 F, BW, DQ and VL; no test forced AVX2 or the
/// baseline). srdpr_gemm_rows gives the AVX2 clone's bits (the same FMA chains); per element the
/// elementwise kernels do too (erf, GELU, dropout masks, AdamW, add, multiply); reductions across
/// lanes add in another order.
int srdpr_kernels_use_avx512(void);
/// Tests: run the AVX2 clones even on an AVX-512 CPU (force = 1) or go back to the CPU's choice (0).
void srdpr_kernels_force_avx2(int force);
/// 1 when the CPU and the OS support AVX2 and FMA (whatever the kernels' dispatch was forced to).
int srdpr_cpu_has_avx2_fma(void);
/// 1 when the CPU and the OS support AVX-512 F, CD, BW, DQ and VL (what OpenBLAS's SkylakeX kernels need).
/// 1 when the CPU and the OS support AVX-512 F, BW, DQ and VL (what kernels-avx512.c is compiled for).
int srdpr_cpu_has_avx512_bw_dq_vl(void);
int srdpr_cpu_has_avx512_skylake(void);

/// erf(x) for `count` values, within 2 ulp of the correctly rounded fp32 value (see ElementwiseKernelTests).
void srdpr_erf(float *out, const float *input, long count);

/// GELU (exact erf form) forward: out = 0.5 x (1 + erf(x / sqrt 2)) = x Φ(x), with the normal CDF Φ in
/// one branch-free form (no 1 + erf cancellation): within 2 ulp of the correctly rounded value for
/// x >= 0, 64 ulp of the (small) value for x < 0, 1e-7 max(1, |x|) absolute (ElementwiseKernelTests).
void srdpr_gelu_forward(float *out, const float *input, long count);
/// GELU's value and derivative at `input` in one pass (shares the erf).
void srdpr_gelu_forward_derivative(float *out, float *derivative, const float *input, long count);
/// dInput = dOut * GELU'(input); dInput may be dOut.
void srdpr_gelu_backward(float *dInput, const float *dOut, const float *input, long count);

/// x[i] *= y[i].
void srdpr_multiply(float *x, const float *y, long count);
/// x[i] *= y[i] over `rows` rows of `dim`, adding each row of the products to columnSums in row
/// order: srdpr_multiply then srdpr_add of every row into columnSums, in one pass (the same bits).
void srdpr_multiply_sum_rows(float *x, const float *y, float *columnSums, long rows, long dim);
/// out[i] = a[i] + b[i]; out may alias a or b.
void srdpr_add(float *out, const float *a, const float *b, long count);
/// columnSums[c] += x[r, c] for r = 0, 1, ... in order (a bias's gradient over [rows, dim]): the
/// bits of srdpr_add row by row into columnSums, in one blocked pass.
void srdpr_sum_rows(float *columnSums, const float *x, long rows, long dim);

/// Softmax of each of `rows` rows of `length` scores in place; keys whose `keyMask` entry is 0 get
/// exactly 0 (keyMask NULL = every key is real). A row with no real key gets uniform weights.
void srdpr_softmax_rows(float *scores, long rows, long length, const int32_t *keyMask);
/// Softmax backward in place: grad = probs * (grad - <probs, grad>) * scale, row by row.
void srdpr_softmax_backward_rows(float *grad, const float *probs, long rows, long length, float scale);

/// Dropout of one row keyed by a counter-based hash: element i (at position start + i of the row's
/// fixed grid) is kept when its 16-bit uniform is >= p * 65536, and kept values are scaled by 1/(1-p).
/// Bit-for-bit the masks of DropoutContext.apply's definition (SplitMix64 finaliser of rowKey + group,
/// four 16-bit uniforms per group of four positions).
void srdpr_dropout_row(float *x, long count, uint64_t rowKey, float p, long start);
/// grad[i] = kept[i] != 0 ? grad[i] * scale : 0 (dropout backward given the dropped forward values).
void srdpr_dropout_backward_where_kept(float *grad, const float *kept, long count, float scale);

/// LayerNorm forward of rows [0, rows): out = (x - mean) * rstd * gamma + beta; saves mean and rstd
/// when the pointers are not NULL.
void srdpr_layernorm_forward(float *out, float *mean, float *rstd, const float *input, const float *gamma,
                             const float *beta, long rows, long dim, float eps);
/// The residual block's add and LayerNorm in one pass: x = input + residual (srdpr_add's
/// arithmetic), written to `sum` when it is not NULL (training keeps it for backward), then
/// out = LayerNorm(x) with srdpr_layernorm_forward's arithmetic (the same bits as the two calls).
void srdpr_residual_layernorm_forward(float *out, float *sum, float *mean, float *rstd, const float *input,
                                      const float *residual, const float *gamma, const float *beta, long rows,
                                      long dim, float eps);
/// LayerNorm backward of rows [0, rows): writes dInput only.
void srdpr_layernorm_backward_input(float *dInput, const float *dOut, const float *input, const float *gamma,
                                    const float *mean, const float *rstd, long rows, long dim);
/// Adds the rows' contributions to dGamma and dBeta (vectorised over dim; rows in order).
void srdpr_layernorm_backward_parameters(float *dGamma, float *dBeta, const float *dOut, const float *input,
                                         const float *mean, const float *rstd, long rows, long dim);

/// Self-attention of one (sequence, head), fused: Q, K, V, context are [length, headDim]; the
/// context (and the gradients) with row stride `stride` (the heads side by side in [tokens, hidden]),
/// Q, K, V with `qkvStride` (hidden, or 3 x hidden as column blocks of one [tokens, 3 x hidden]
/// product). Forward: softmax(scale Q Kᵀ) with keys whose keyMask entry is 0 excluded (keyMask NULL = all real), written to `probabilities`
/// [length, length] when not NULL (before dropout); with `dropout` each row i is dropped as
/// srdpr_dropout_row(row, length, rowKey, p, (head * 4096 + i) * 4096) (Attention.dropProbabilities'
/// keys); context = (dropped) probabilities · V. `scratch`: srdpr_attention_scratch(length, headDim) floats.
void srdpr_attention_forward(float *context, float *probabilities, const float *query, const float *key,
                             const float *value, long length, long headDim, long stride, long qkvStride, float scale,
                             const int32_t *keyMask, int dropout, uint64_t rowKey, float p, long head, float *scratch);
/// The backward of srdpr_attention_forward given its saved probabilities: overwrites dQuery, dKey,
/// dValue (same layout as Q, K, V) from dContext; the dropout masks are drawn again from the same keys.
void srdpr_attention_backward(float *dQuery, float *dKey, float *dValue, const float *dContext,
                              const float *probabilities, const float *query, const float *key,
                              const float *value, long length, long headDim, long stride, long qkvStride, float scale,
                              int dropout, uint64_t rowKey, float p, long head, float *scratch);
/// Floats of scratch srdpr_attention_forward and _backward need at this length and head size.
long srdpr_attention_scratch(long length, long headDim);

/// One AdamW update of `count` parameters (torch.optim.AdamW single-tensor arithmetic). With
/// `gradientScale` != 1 each gradient is first multiplied by it and stored back (clipping's bytes).
void srdpr_adamw(float *parameters, float *gradients, float *m, float *v, long count, float gradientScale,
                 float decayFactor, int decays, float oneMinusBeta1, float beta2, float oneMinusBeta2,
                 float stepSize, float biasCorrection2Sqrt, float eps);

/// The Linear layers' product from weights packed once: floats srdpr_gemm_pack_weights writes for
/// a weight [outDim, inDim] (panels of 16 output columns: their 16 biases, then inDim x 16 weights).
long srdpr_gemm_packed_floats(long outDim, long inDim);
/// Packs weight [outDim, inDim] (row-major, PyTorch's nn.Linear layout) and bias [outDim] (NULL = 0).
void srdpr_gemm_pack_weights(float *packed, const float *weight, const float *bias, long outDim, long inDim);
/// out[r, o] = bias[o] + Σ_k input[r, k] weight[o, k] for rows [0, rows), from packed weights. Each
/// output is one chain from the bias over k in order (fused multiply-adds in the AVX2 and AVX-512
/// builds, hence the same bits in both), so a
/// row's bits do not depend on the other rows, the row count or the thread that runs it.
void srdpr_gemm_rows(float *out, const float *input, const float *packed, long rows, long inDim, long outDim);
/// GELU(srdpr_gemm_rows) in `out` and, unless `derivative` is NULL, GELU's derivative there: the bits
/// of srdpr_gemm_rows followed by srdpr_gelu_forward_derivative (or srdpr_gelu_forward) in place,
/// with the AVX-512 clone applying them to each register tile as it finishes (gelu-vector.h, the
/// elementwise kernels' code), instead of a pass of their own over the whole output.
void srdpr_gemm_rows_gelu(float *out, float *derivative, const float *input, const float *packed, long rows, long inDim,
                          long outDim);
/// Rows of srdpr_gemm_rows' register tile in the clone this process runs (AVX-512 12, AVX2 6,
/// baseline 2): callers that split rows over threads cut on multiples of it (any cut gives the
/// same bits; this one leaves no thread a partial tile it need not run).
long srdpr_gemm_tile_rows(void);
/// The clone every kernel of this target runs in this process (one choice for all of them, forced or
/// the CPU's): "avx512", "avx2" or "baseline" (benchmark reports, tests).
const char *srdpr_kernels_clone(void);

#endif
