// srdpr_gemm_rows for AVX-512 CPUs (dispatch.c calls it only when the CPU has AVX-512F): the same
// packed layout (gemm-pack.c, panels of 16 columns, so one panel row is exactly one zmm) and the
// same arithmetic as gemm-body.h's AVX2 clone. Every output is ONE fused multiply-add chain from
// the bias over k in order; a chain parked in `out` between depth blocks is the same fp32 value,
// so the bits equal the AVX2 clone's and the scalar chain's, whatever the tiling, the batch or
// the thread (GemmKernelTests).
//
// Why a clone of its own and not gemm-body.h with 16 lanes: a 6-row tile of one panel holds 6
// chains, too few to cover the FMA latency with two 512-bit FMA units (4 cycles x 2 = 8 needed);
// this tile is 12 rows x 2 panels = 24 zmm accumulators + 2 weight vectors + the broadcast input in
// one register, 27 of 32 zmm. Measured (one thread, MiniLM / BERT-base shapes, 1024 rows): 8 x 2
// about 4% slower, 14 x 2 the same within the noise; 12 also keeps the callers' cuts on multiples
// of the AVX2 tile's 6 rows.
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)

#define LANES 16
// (immintrin.h brings stdlib.h, hence sys/select.h's select(): the vector helper is renamed here.)
#define select vectorSelect
#include "vector-basics.h"
#include "gelu-vector.h"
#undef select
/// The loops over the tile's rows and panels, unrolled whatever the compiler's size heuristics say:
/// 12 x 2 is past them, and a rolled loop keeps the accumulators in memory (a third of the speed).
#define UNROLLED _Pragma("clang loop unroll(full)")

#define PANEL 16        // gemm-body.h's GEMM_PANEL (the packed layout)
#define TILE_ROWS 12    // srdpr_gemm_tile_rows() reports it to the callers that split rows
#define TILE_PANELS 2
/// Depth block: the tile's input slice, packed k-major (TILE_ROWS x 256 x 4 B = 12 KB), stays in
/// the 48 KB L1d while the weights of a column block stream past it. Column block: 32 panels,
/// 256 x 512 x 4 B = 512 KB of weights stay in the 2 MB L2 while every row tile passes over them.
/// Row block (a multiple of TILE_ROWS): the outputs where the depth blocks park the chains are
/// 384 rows at most (1.2 MB at 768 columns) instead of the whole call (12 MB at 4096 x 768, read
/// and written back once per depth block). Measured at 4096 rows: 5-20% faster than without; 96
/// rows was as fast there but 10% slower at 256-1024 rows x 3072 columns (the weights are read
/// once per row block). Calls of up to 384 rows run as without row blocks.
#ifndef DEPTH_BLOCK  // (overridable only to tune)
#define DEPTH_BLOCK 256
#define COLUMN_BLOCK_PANELS 32
#define ROW_BLOCK 384
#endif

/// The GELU epilogue of a finished tile (`finished`: its rows x panels outputs, row-major): GELU
/// (gelu-vector.h, the elementwise kernels' own code, so their bits) into `out` and its derivative
/// into `derivative` unless NULL. One copy, out of line: inlined into every tile shape it would
/// multiply the code size; the tile hands its registers over through the stack (full-width stores
/// and loads, which forward).
static __attribute__((noinline)) void geluStore512(float *out, float *derivative, long outStride, const __m512 *finished,
                                                   int rows, int panels, __mmask16 lastMask) {
    for (int r = 0; r < rows; r++) {
        for (int q = 0; q < panels; q++) {
            __mmask16 mask = q == panels - 1 ? lastMask : (__mmask16)0xFFFF;
            fv x = (fv)finished[r * panels + q], cdf, d;
            if (derivative) {
                geluParts(x, &cdf, &d);
                _mm512_mask_storeu_ps(derivative + r * outStride + q * PANEL, mask, (__m512)d);
            } else {
                cdf = phiVector(x);
            }
            _mm512_mask_storeu_ps(out + r * outStride + q * PANEL, mask, (__m512)(x * cdf));
        }
    }
}

/// One tile: `rows` x `panels` panels (both compile-time after inlining) over `depth` inputs, the
/// input packed as tileInput[k * TILE_ROWS + r]. `start` is the first panel's bias (first depth
/// block) or NULL to continue the chains parked in `out`; `lastMask` holds the columns of the
/// last panel that exist (only the layer's last panel is partial). With `gelu` (the last depth
/// block only) the outputs go through geluStore512 instead of straight to `out`.
INLINE void gemmTile512(float *out, long outStride, const float *tileInput, const float *weights, long panelStride,
                        const float *start, long depth, int rows, int panels, __mmask16 lastMask, int gelu, float *derivative) {
    __m512 accumulator[TILE_ROWS][TILE_PANELS];
    UNROLLED for (int r = 0; r < rows; r++) {
        UNROLLED for (int q = 0; q < panels; q++) {
            __mmask16 mask = q == panels - 1 ? lastMask : (__mmask16)0xFFFF;
            accumulator[r][q] = start ? _mm512_loadu_ps(start + q * panelStride)
                                      : _mm512_maskz_loadu_ps(mask, out + r * outStride + q * PANEL);
        }
    }
    for (long k = 0; k < depth; k++) {
        __m512 w[TILE_PANELS];
        UNROLLED for (int q = 0; q < panels; q++) w[q] = _mm512_loadu_ps(weights + q * panelStride + k * PANEL);
        const float *a = tileInput + k * TILE_ROWS;
        UNROLLED for (int r = 0; r < rows; r++) {
            __m512 x = _mm512_set1_ps(a[r]);
            UNROLLED for (int q = 0; q < panels; q++) accumulator[r][q] = _mm512_fmadd_ps(x, w[q], accumulator[r][q]);
        }
    }
    if (gelu) {
        __m512 finished[TILE_ROWS * TILE_PANELS];
        UNROLLED for (int r = 0; r < rows; r++) {
            UNROLLED for (int q = 0; q < panels; q++) finished[r * panels + q] = accumulator[r][q];
        }
        return geluStore512(out, derivative, outStride, finished, rows, panels, lastMask);
    }
    UNROLLED for (int r = 0; r < rows; r++) {
        UNROLLED for (int q = 0; q < panels; q++) {
            __mmask16 mask = q == panels - 1 ? lastMask : (__mmask16)0xFFFF;
            _mm512_mask_storeu_ps(out + r * outStride + q * PANEL, mask, accumulator[r][q]);
        }
    }
}

#define TILE_CASE(R)                                                                                      \
    case R:                                                                                               \
        if (panels == 2) gemmTile512(out, outStride, tileInput, weights, panelStride, start, depth, R, 2, lastMask, gelu, derivative); \
        else gemmTile512(out, outStride, tileInput, weights, panelStride, start, depth, R, 1, lastMask, gelu, derivative); \
        break;

/// gemmTile512 with its row and panel counts as constants, so the accumulators live in registers.
static void gemmTileRows512(float *out, long outStride, const float *tileInput, const float *weights, long panelStride,
                            const float *start, long depth, int rows, int panels, __mmask16 lastMask, int gelu, float *derivative) {
    switch (rows) {
        TILE_CASE(12) TILE_CASE(11) TILE_CASE(10) TILE_CASE(9) TILE_CASE(8) TILE_CASE(7)
        TILE_CASE(6) TILE_CASE(5) TILE_CASE(4) TILE_CASE(3) TILE_CASE(2)
        default: TILE_CASE(1)
    }
}

/// Rows [0, rows) (at most ROW_BLOCK): depth blocks, column blocks, row tiles, panel pairs. With
/// `gelu`, each tile's outputs go through the GELU epilogue at the last depth block.
static void gemmRowBlock512(float *out, const float *input, const float *packed, long rows, long inDim, long outDim,
                            int gelu, float *derivative) {
    long panels = (outDim + PANEL - 1) / PANEL, panelFloats = PANEL * (inDim + 1);
    float tileInput[DEPTH_BLOCK * TILE_ROWS] __attribute__((aligned(64)));
    // inDim 0 still runs one (empty) depth block: out = bias. Depth blocks go in order (outermost),
    // so every chain adds its terms in k order whatever the other blocks.
    for (long k0 = 0; k0 < inDim || k0 == 0; k0 += DEPTH_BLOCK) {
        long depth = inDim - k0 < DEPTH_BLOCK ? inDim - k0 : DEPTH_BLOCK;
        for (long p0 = 0; p0 < panels; p0 += COLUMN_BLOCK_PANELS) {
            long panelEnd = panels - p0 < COLUMN_BLOCK_PANELS ? panels : p0 + COLUMN_BLOCK_PANELS;
            for (long i = 0; i < rows; i += TILE_ROWS) {
                int tileRows = rows - i < TILE_ROWS ? (int)(rows - i) : TILE_ROWS;
                // k-major copy of the tile's inputs: one broadcast address per (k, row) with a
                // constant offset, and the slice stays in L1 while every panel pair passes.
                for (int r = 0; r < tileRows; r++) {
                    const float *row = input + (i + r) * inDim + k0;
                    for (long k = 0; k < depth; k++) tileInput[k * TILE_ROWS + r] = row[k];
                }
                for (long p = p0; p < panelEnd; p += TILE_PANELS) {
                    int tilePanels = panelEnd - p < TILE_PANELS ? (int)(panelEnd - p) : TILE_PANELS;
                    long lastColumns = outDim - (p + tilePanels - 1) * PANEL;
                    __mmask16 lastMask = lastColumns >= PANEL ? (__mmask16)0xFFFF : (__mmask16)((1u << lastColumns) - 1);
                    const float *panel = packed + p * panelFloats;
                    int last = gelu && k0 + depth >= inDim;
                    gemmTileRows512(out + i * outDim + p * PANEL, outDim, tileInput, panel + PANEL + k0 * PANEL,
                                    panelFloats, k0 == 0 ? panel : NULL, depth, tileRows, tilePanels, lastMask,
                                    last, last && derivative ? derivative + i * outDim + p * PANEL : NULL);
                }
            }
        }
    }
}

static void gemmRows512(float *out, const float *input, const float *packed, long rows, long inDim, long outDim,
                        int gelu, float *derivative) {
    for (long i0 = 0; i0 < rows; i0 += ROW_BLOCK) {
        long blockRows = rows - i0 < ROW_BLOCK ? rows - i0 : ROW_BLOCK;
        gemmRowBlock512(out + i0 * outDim, input + i0 * inDim, packed, blockRows, inDim, outDim, gelu,
                        derivative ? derivative + i0 * outDim : NULL);
    }
}

void srdpr_gemm_rows_avx512(float *out, const float *input, const float *packed, long rows, long inDim, long outDim) {
    gemmRows512(out, input, packed, rows, inDim, outDim, 0, NULL);
}

void srdpr_gemm_rows_gelu_avx512(float *out, float *derivative, const float *input, const float *packed, long rows,
                                 long inDim, long outDim) {
    gemmRows512(out, input, packed, rows, inDim, outDim, 1, derivative);
}

#pragma clang attribute pop
#endif
