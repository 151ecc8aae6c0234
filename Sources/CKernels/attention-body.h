// Fused attention of one (sequence, head), included after kernels-body.h by kernels-avx2.c and
// kernels-baseline.c (same LANES / NAME). The products are small (one side is headDim = 32..64, or
// the sequence length); they run through one packed, register-tiled loop, `tileProduct`, and
// forward works on blocks of query rows so a block's [rows, length] scores stay in L1 between the
// product, the softmax, the dropout and the weighted sum (nothing of size length² is written
// unless the probabilities are kept for backward).

/// Query rows per forward block, three register tiles: 18 rows x 256 keys x 4 bytes = 18 KB of a
/// 32 KB L1. (dispatch.c's srdpr_attention_scratch assumes 18.)
#define ATTENTION_BLOCK_ROWS 18
/// Output rows and columns of one register tile: 6 x 2 vectors = 12 accumulators (+ 2 B vectors
/// + 1 broadcast = 15 of the 16 vector registers), enough independent FMAs to cover their latency.
#define TILE_ROWS 6
#define TILE_COLS (2 * LANES)

INLINE long roundUp(long n, long multiple) { return (n + multiple - 1) / multiple * multiple; }

/// Packs A(m, k) = A[m*aRow + k*aCol], m < M, k < depth, into tiles of TILE_ROWS rows, each
/// k-major: out[tile*depth*TILE_ROWS + k*TILE_ROWS + r] (rows past M are 0). Packed, the inner
/// loop reads both operands sequentially, whatever their strides (a row stride of 1 to 3 KB,
/// the hidden size, maps a column walk onto a few L1 sets and thrashes it).
static void packRows(float *out, const float *A, long aRow, long aCol, long M, long depth) {
    for (long m0 = 0; m0 < M; m0 += TILE_ROWS) {
        float *tile = out + m0 * depth;
        long rows = M - m0 < TILE_ROWS ? M - m0 : TILE_ROWS;
        for (long k = 0; k < depth; k++) {
            for (long r = 0; r < rows; r++) tile[k * TILE_ROWS + r] = A[(m0 + r) * aRow + k * aCol];
            for (long r = rows; r < TILE_ROWS; r++) tile[k * TILE_ROWS + r] = 0.f;
        }
    }
}

/// Packs B(k, n) = B[k*bRow + n*bCol], k < depth, n < N, into panels of TILE_COLS columns:
/// out[panel*depth*TILE_COLS + k*TILE_COLS + c] (columns past N are 0).
static void packColumns(float *out, const float *B, long bRow, long bCol, long depth, long N) {
    for (long n0 = 0; n0 < N; n0 += TILE_COLS) {
        float *panel = out + n0 * depth;
        long cols = N - n0 < TILE_COLS ? N - n0 : TILE_COLS;
        for (long k = 0; k < depth; k++) {
            for (long c = 0; c < cols; c++) panel[k * TILE_COLS + c] = B[k * bRow + (n0 + c) * bCol];
            for (long c = cols; c < TILE_COLS; c++) panel[k * TILE_COLS + c] = 0.f;
        }
    }
}

/// C[m*ldc + n] = alpha * Σ_k A(m, k) B(k, n) for m < M, n < N (C overwritten), from packRows'
/// and packColumns' layouts. Panels of B outer, so one (depth x TILE_COLS) panel stays in L1
/// across all rows.
static void tileProduct(float *C, long ldc, const float *packedA, const float *packedB, long M, long N, long depth,
                        float alpha) {
    for (long n0 = 0; n0 < N; n0 += TILE_COLS) {
        const float *panel = packedB + n0 * depth;
        long cols = N - n0 < TILE_COLS ? N - n0 : TILE_COLS;
        for (long m0 = 0; m0 < M; m0 += TILE_ROWS) {
            const float *tile = packedA + m0 * depth;
            fv acc[TILE_ROWS][2];
            for (int r = 0; r < TILE_ROWS; r++) acc[r][0] = acc[r][1] = splat(0.f);
            for (long k = 0; k < depth; k++) {
                fv b0 = load(panel + k * TILE_COLS), b1 = load(panel + k * TILE_COLS + LANES);
                for (int r = 0; r < TILE_ROWS; r++) {
                    fv a = splat(tile[k * TILE_ROWS + r]);
                    acc[r][0] += a * b0;
                    acc[r][1] += a * b1;
                }
            }
            long rows = M - m0 < TILE_ROWS ? M - m0 : TILE_ROWS;
            float *out = C + m0 * ldc + n0;
            if (cols == TILE_COLS) {
                for (long r = 0; r < rows; r++) {
                    store(out + r * ldc, acc[r][0] * splat(alpha));
                    store(out + r * ldc + LANES, acc[r][1] * splat(alpha));
                }
            } else {
                float partial[TILE_COLS];
                for (long r = 0; r < rows; r++) {
                    store(partial, acc[r][0] * splat(alpha));
                    store(partial + LANES, acc[r][1] * splat(alpha));
                    memcpy(out + r * ldc, partial, cols * sizeof(float));
                }
            }
        }
    }
}

/// Dropout of attention row `row` of `head`: the grid start Attention.dropProbabilities keys it by.
INLINE void dropAttentionRow(float *x, long length, long head, long row, uint64_t rowKey, float p) {
    NAME(srdpr_dropout_row)(x, length, rowKey, p, (head * 4096 + row) * 4096);
}

void NAME(srdpr_attention_forward)(float *context, float *probabilities, const float *query, const float *key,
                                   const float *value, long length, long headDim, long stride, float scale,
                                   const int32_t *keyMask, int dropout, uint64_t rowKey, float p, long head,
                                   float *scratch) {
    // Scratch: Kᵀ and V packed once per head, then per block its scores and its packed rows.
    float *keysPacked = scratch;                                      // headDim x roundUp(length)
    float *valuesPacked = keysPacked + headDim * roundUp(length, TILE_COLS);  // length x roundUp(headDim)
    float *block = valuesPacked + length * roundUp(headDim, TILE_COLS);      // BLOCK_ROWS x length
    float *rowsPacked = block + ATTENTION_BLOCK_ROWS * length;        // BLOCK_ROWS x max(headDim, length)
    packColumns(keysPacked, key, 1, stride, headDim, length);         // B(d, j) = K[j, d]
    packColumns(valuesPacked, value, stride, 1, length, headDim);
    for (long first = 0; first < length; first += ATTENTION_BLOCK_ROWS) {
        long rows = length - first < ATTENTION_BLOCK_ROWS ? length - first : ATTENTION_BLOCK_ROWS;
        // scores = scale · Q Kᵀ for the block's rows, then softmax, (kept,) dropout, row by row.
        packRows(rowsPacked, query + first * stride, stride, 1, rows, headDim);
        tileProduct(block, length, rowsPacked, keysPacked, rows, length, headDim, scale);
        NAME(srdpr_softmax_rows)(block, rows, length, keyMask);
        if (probabilities) memcpy(probabilities + first * length, block, rows * length * sizeof(float));
        if (dropout)
            for (long i = 0; i < rows; i++) dropAttentionRow(block + i * length, length, head, first + i, rowKey, p);
        // context rows = (dropped) probabilities · V.
        packRows(rowsPacked, block, length, 1, rows, length);
        tileProduct(context + first * stride, stride, rowsPacked, valuesPacked, rows, headDim, length, 1.f);
    }
}

void NAME(srdpr_attention_backward)(float *dQuery, float *dKey, float *dValue, const float *dContext,
                                    const float *probabilities, const float *query, const float *key,
                                    const float *value, long length, long headDim, long stride, float scale,
                                    int dropout, uint64_t rowKey, float p, long head, float *scratch) {
    const long L = length, LL = length * length;
    float *dScores = scratch, *dropped = dScores + LL;
    float *packedA = dropped + LL;                                     // roundUp(L, 4) x max(L, headDim)
    float *packedB = packedA + roundUp(L, TILE_ROWS) * (L > headDim ? L : headDim);
    // The probabilities the forward multiplied V by: dropped again from the same keys.
    const float *used = probabilities;
    if (dropout) {
        memcpy(dropped, probabilities, LL * sizeof(float));
        for (long i = 0; i < L; i++) dropAttentionRow(dropped + i * L, L, head, i, rowKey, p);
        used = dropped;
    }
    // dV = usedᵀ · dContext.
    packRows(packedA, used, 1, L, L, L);
    packColumns(packedB, dContext, stride, 1, L, headDim);
    tileProduct(dValue, stride, packedA, packedB, L, headDim, L, 1.f);
    // d(used) = dContext · Vᵀ, then back through dropout (kept where the dropped value is nonzero;
    // where P is 0 the softmax backward gives 0 anyway) and softmax, with the score scale folded in.
    packRows(packedA, dContext, stride, 1, L, headDim);
    packColumns(packedB, value, 1, stride, headDim, L);
    tileProduct(dScores, L, packedA, packedB, L, L, headDim, 1.f);
    if (dropout) NAME(srdpr_dropout_backward_where_kept)(dScores, dropped, LL, 1.f / (1.f - p));
    NAME(srdpr_softmax_backward_rows)(dScores, probabilities, L, L, scale);
    // dQ = dScores · K ; dK = dScoresᵀ · Q.
    packRows(packedA, dScores, L, 1, L, L);
    packColumns(packedB, key, stride, 1, L, headDim);
    tileProduct(dQuery, stride, packedA, packedB, L, headDim, L, 1.f);
    packRows(packedA, dScores, 1, L, L, L);
    packColumns(packedB, query, stride, 1, L, headDim);
    tileProduct(dKey, stride, packedA, packedB, L, headDim, L, 1.f);
}

#undef TILE_ROWS
#undef TILE_COLS
#undef ATTENTION_BLOCK_ROWS
