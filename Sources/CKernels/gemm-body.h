// The Linear layers' product out = input · Wᵀ + bias from weights packed once (gemm-pack.c),
// included by kernels-avx2.c and kernels-baseline.c after kernels-body.h (same LANES / NAME).
// Every output is ONE chain: the accumulator starts at the bias and adds input[k] * w[k] for
// k = 0, 1, ... in order (a fused multiply-add in the AVX2 build, a rounded product then a rounded
// add in the baseline build). No term depends on the other rows, the row tiling, the depth
// blocking (a partial chain parked in `out` between depth blocks is the same fp32 value) or the
// thread that runs the row, so a row's bits are those it gets when computed alone.

/// Output columns per packed panel, the same in both builds (tests switch builds at run time over
/// one packed buffer): 2 AVX2 vectors, 4 SSE vectors.
#define GEMM_PANEL 16
#define GEMM_VECTORS (GEMM_PANEL / LANES)
/// Rows of one register tile: AVX2 6 rows x 2 vectors = 12 accumulators + 2 weight vectors + 1
/// broadcast = 15 of 16 ymm registers; SSE 2 rows x 4 vectors = 8 + 4 + 1 = 13 of 16 xmm.
#if LANES == 8
#define GEMM_TILE_ROWS 6
#else
#define GEMM_TILE_ROWS 2
#endif
/// Depth block: a panel's slice is 256 x 16 x 4 B = 16 KB of the 32 KB L1d, read by every tile of
/// a row block. Column block: 16 panels (256 columns); its weights stay in L2 while every row block
/// passes over them (without it a wide layer, 768 -> 3072, streamed its 3 MB depth slice from L3
/// once per row block). Row block: 96 rows x 256 x 4 B = 96 KB of inputs; its 96 x 256 outputs
/// (96 KB) stay in L2 from one depth block to the next (see srdpr_gemm_rows).
#define GEMM_DEPTH_BLOCK 256
#define GEMM_COLUMN_BLOCK_PANELS 16
#define GEMM_ROW_BLOCK 96

INLINE fv gemmMultiplyAdd(fv accumulator, fv a, fv w) {
#if LANES == 8
    return __builtin_elementwise_fma(a, w, accumulator);
#else
#pragma clang fp contract(off)
    return accumulator + a * w;
#endif
}

/// One tile: `rows` (compile-time after inlining) rows x one panel over `depth` inputs. `start` is
/// the panel's bias (first depth block) or NULL to continue the chains parked in `out`; `columns`
/// (< GEMM_PANEL only in the last panel) limits what is read from and written to `out`.
INLINE void gemmTile(float *out, long outStride, const float *input, long inputStride, const float *weights,
                     const float *start, long depth, int rows, long columns) {
    fv accumulator[GEMM_TILE_ROWS][GEMM_VECTORS];
    float partial[GEMM_PANEL];
    for (int r = 0; r < rows; r++) {
        const float *from = start;
        if (!from && columns == GEMM_PANEL) {
            from = out + r * outStride;
        } else if (!from) {
            memset(partial, 0, sizeof partial);
            memcpy(partial, out + r * outStride, columns * sizeof(float));
            from = partial;
        }
        for (int v = 0; v < GEMM_VECTORS; v++) accumulator[r][v] = load(from + v * LANES);
    }
    for (long k = 0; k < depth; k++) {
        fv w[GEMM_VECTORS];
        for (int v = 0; v < GEMM_VECTORS; v++) w[v] = load(weights + k * GEMM_PANEL + v * LANES);
        for (int r = 0; r < rows; r++) {
            fv a = splat(input[r * inputStride + k]);
            for (int v = 0; v < GEMM_VECTORS; v++) accumulator[r][v] = gemmMultiplyAdd(accumulator[r][v], a, w[v]);
        }
    }
    for (int r = 0; r < rows; r++) {
        if (columns == GEMM_PANEL) {
            for (int v = 0; v < GEMM_VECTORS; v++) store(out + r * outStride + v * LANES, accumulator[r][v]);
        } else {
            for (int v = 0; v < GEMM_VECTORS; v++) store(partial + v * LANES, accumulator[r][v]);
            memcpy(out + r * outStride, partial, columns * sizeof(float));
        }
    }
}

/// gemmTile with its row count as a constant, so the accumulators live in registers.
static void gemmTileRows(float *out, long outStride, const float *input, long inputStride, const float *weights,
                         const float *start, long depth, int rows, long columns) {
    switch (rows) {
#if GEMM_TILE_ROWS == 6
    case 6: gemmTile(out, outStride, input, inputStride, weights, start, depth, 6, columns); break;
    case 5: gemmTile(out, outStride, input, inputStride, weights, start, depth, 5, columns); break;
    case 4: gemmTile(out, outStride, input, inputStride, weights, start, depth, 4, columns); break;
    case 3: gemmTile(out, outStride, input, inputStride, weights, start, depth, 3, columns); break;
#endif
    case 2: gemmTile(out, outStride, input, inputStride, weights, start, depth, 2, columns); break;
    default: gemmTile(out, outStride, input, inputStride, weights, start, depth, 1, columns); break;
    }
}

void NAME(srdpr_gemm_rows)(float *out, const float *input, const float *packed, long rows, long inDim, long outDim) {
    long panels = (outDim + GEMM_PANEL - 1) / GEMM_PANEL, panelFloats = GEMM_PANEL * (inDim + 1);
    // Depth blocks innermost but for the panels and tiles: a tile that continues its chains reads
    // them back from the row block's outputs, still in L2. With depth blocks outermost it read them
    // from L3/memory (every output written between two depth blocks): a tile's first loads missed
    // unprefetched (rows outDim apart), which cost 10-15% at 2048 rows, 384 -> 1152/1536 (the
    // training step's context rows per thread). Depth blocks still go in order for every output, so
    // every chain adds its terms in k order whatever the blocking: the same bits.
    for (long p0 = 0; p0 < panels; p0 += GEMM_COLUMN_BLOCK_PANELS) {
        long panelEnd = panels - p0 < GEMM_COLUMN_BLOCK_PANELS ? panels : p0 + GEMM_COLUMN_BLOCK_PANELS;
        for (long i0 = 0; i0 < rows; i0 += GEMM_ROW_BLOCK) {
            long rowEnd = rows - i0 < GEMM_ROW_BLOCK ? rows : i0 + GEMM_ROW_BLOCK;
            // inDim 0 still runs one (empty) depth block: out = bias.
            for (long k0 = 0; k0 < inDim || k0 == 0; k0 += GEMM_DEPTH_BLOCK) {
                long depth = inDim - k0 < GEMM_DEPTH_BLOCK ? inDim - k0 : GEMM_DEPTH_BLOCK;
                for (long p = p0; p < panelEnd; p++) {
                    const float *panel = packed + p * panelFloats;
                    const float *start = k0 == 0 ? panel : NULL;
                    long columns = outDim - p * GEMM_PANEL < GEMM_PANEL ? outDim - p * GEMM_PANEL : GEMM_PANEL;
                    for (long i = i0; i < rowEnd; i += GEMM_TILE_ROWS) {
                        int tileRows = rowEnd - i < GEMM_TILE_ROWS ? (int)(rowEnd - i) : GEMM_TILE_ROWS;
                        gemmTileRows(out + i * outDim + p * GEMM_PANEL, outDim, input + i * inDim + k0, inDim,
                                     panel + GEMM_PANEL + k0 * GEMM_PANEL, start, depth, tileRows, columns);
                    }
                }
            }
        }
    }
}
