// Fused attention of one (sequence, head), included after kernels-body.h by kernels-avx2.c and
// kernels-baseline.c (same LANES / NAME). The products are small (one side is headDim = 32..64, or
// the sequence length) and run through register-tiled loops. Forward packs only Kᵀ and V, once per
// head (query rows and probability rows are broadcast where they lie: packing them, length² floats
// per head, cost as much as the products at headDim 32), and works on blocks of query rows so a
// block's [rows, length] scores stay in L1 between the product, the softmax, the dropout and the
// weighted sum (nothing of size length² is written unless the probabilities are kept for backward).

/// Scores of one forward block of query rows: 5120 floats = 20 KB of a 32 KB L1 (18 rows at length
/// 256), at most ATTENTION_MAX_BLOCK_ROWS rows. dispatch.c's srdpr_attention_scratch assumes both.
#define ATTENTION_BLOCK_FLOATS 5120
#define ATTENTION_MAX_BLOCK_ROWS 120
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

/// C(r, c) = rowScale[r] · Σ_k A[r·lda + k] · B[k·TILE_COLS + c] for r < rows (<= TILE_ROWS),
/// c < cols (<= TILE_COLS): A's entries broadcast straight from its rows (no packing: a query row
/// or a row of probabilities is contiguous), B one packed panel (zero past cols). 12 accumulators,
/// 2 panel loads and `rows` broadcasts per k. `rows` is a constant where it is inlined. With
/// `rowMaxima`, each row's running maximum over the columns written is kept there (a vector per
/// row, reduced by the caller), so the softmax needs no pass of its own for it.
INLINE void broadcastTile(float *C, long ldc, const float *A, long lda, const float *panel, long depth,
                          const float *rowScale, fv *rowMaxima, const int rows, long cols) {
    fv acc[TILE_ROWS][2];
    // One pointer per row, indexed by k: the loop then needs no address arithmetic of its own.
    const float *rowOf[TILE_ROWS];
    for (int r = 0; r < rows; r++) {
        acc[r][0] = acc[r][1] = splat(0.f);
        rowOf[r] = A + r * lda;
    }
#pragma clang loop unroll_count(2)
    for (long k = 0; k < depth; k++) {
        fv b0 = load(panel + k * TILE_COLS), b1 = load(panel + k * TILE_COLS + LANES);
        for (int r = 0; r < rows; r++) {
            fv a = splat(rowOf[r][k]);
            acc[r][0] += a * b0;
            acc[r][1] += a * b1;
        }
    }
    for (int r = 0; r < rows; r++) {
        fv scale = splat(rowScale[r]);
        acc[r][0] *= scale;
        acc[r][1] *= scale;
    }
    if (cols == TILE_COLS) {
        for (int r = 0; r < rows; r++) {
            store(C + r * ldc, acc[r][0]);
            store(C + r * ldc + LANES, acc[r][1]);
            if (rowMaxima) rowMaxima[r] = vmax(rowMaxima[r], vmax(acc[r][0], acc[r][1]));
        }
    } else {
        float partial[TILE_COLS];
        for (int r = 0; r < rows; r++) {
            store(partial, acc[r][0]);
            store(partial + LANES, acc[r][1]);
            memcpy(C + r * ldc, partial, cols * sizeof(float));
            if (rowMaxima) {
                for (long c = cols; c < TILE_COLS; c++) partial[c] = -__builtin_inff();
                rowMaxima[r] = vmax(rowMaxima[r], vmax(load(partial), load(partial + LANES)));
            }
        }
    }
}

/// C[m·ldc + n] = rowScale[m] · Σ_k A[m·lda + k] · B(k, n) for m < M, n < N, B in packColumns'
/// layout (depth x TILE_COLS panels); rowMaxima (or NULL) as broadcastTile's. Each panel stays in
/// L1 across all rows; the last rows' tile is one of five narrower specialisations, so no work is
/// done on rows that do not exist.
static void broadcastProduct(float *C, long ldc, const float *A, long lda, const float *packedB, long M, long N,
                             long depth, const float *rowScale, fv *rowMaxima) {
    for (long n0 = 0; n0 < N; n0 += TILE_COLS) {
        const float *panel = packedB + n0 * depth;
        long cols = N - n0 < TILE_COLS ? N - n0 : TILE_COLS;
        long m0 = 0;
        for (; m0 + TILE_ROWS <= M; m0 += TILE_ROWS)
            broadcastTile(C + m0 * ldc + n0, ldc, A + m0 * lda, lda, panel, depth, rowScale + m0,
                          rowMaxima ? rowMaxima + m0 : NULL, TILE_ROWS, cols);
        float *c = C + m0 * ldc + n0;
        const float *a = A + m0 * lda, *scale = rowScale + m0;
        fv *maxima = rowMaxima ? rowMaxima + m0 : NULL;
        switch (M - m0) {
        case 1: broadcastTile(c, ldc, a, lda, panel, depth, scale, maxima, 1, cols); break;
        case 2: broadcastTile(c, ldc, a, lda, panel, depth, scale, maxima, 2, cols); break;
        case 3: broadcastTile(c, ldc, a, lda, panel, depth, scale, maxima, 3, cols); break;
        case 4: broadcastTile(c, ldc, a, lda, panel, depth, scale, maxima, 4, cols); break;
        case 5: broadcastTile(c, ldc, a, lda, panel, depth, scale, maxima, 5, cols); break;
        default: break;
        }
    }
}

/// One row of scores to its softmax numerators e^(x - max) in place (masked keys 0; no real key at
/// all: every numerator 1, i.e. uniform weights), returning their sum; `maximum` is the row's
/// maximum over the real keys. Columns from `length` to the next multiple of LANES may be read and
/// written (the block is padded to whole panels); they become 0.
INLINE float softmaxNumerators(float *row, long length, const int32_t *keyMask, int anyKey, float maximum) {
    if (!anyKey) {
        for (long j = 0; j < length; j++) row[j] = 1.f;
        return (float)length;
    }
    const fv m = splat(maximum);
    fv sums = splat(0.f);
    long j = 0;
    for (; j + LANES <= length; j += LANES) {
        fv e = expOfNonPositive(load(row + j) - m);
        if (keyMask) e = select(loadInt(keyMask + j) != 0, e, splat(0.f));
        sums += e;
        store(row + j, e);
    }
    if (j < length) {
        iv lane, real;
        for (int k = 0; k < LANES; k++) {
            lane[k] = j + k < length ? -1 : 0;
            real[k] = j + k < length && (!keyMask || keyMask[j + k] != 0) ? -1 : 0;
        }
        fv e = select(real, expOfNonPositive(select(lane, load(row + j), m) - m), splat(0.f));
        sums += e;
        store(row + j, e);
    }
    return sumLanes(sums);
}

/// Packs rows of a [depth, N] matrix with row stride `bRow` (contiguous columns: V's rows) into
/// packColumns' panels, a vector at a time.
static void packRowPanels(float *out, const float *B, long bRow, long depth, long N) {
    for (long n0 = 0; n0 < N; n0 += TILE_COLS) {
        float *panel = out + n0 * depth;
        long cols = N - n0 < TILE_COLS ? N - n0 : TILE_COLS;
        if (cols == TILE_COLS) {
            for (long k = 0; k < depth; k++) {
                store(panel + k * TILE_COLS, load(B + k * bRow + n0));
                store(panel + k * TILE_COLS + LANES, load(B + k * bRow + n0 + LANES));
            }
        } else {
            for (long k = 0; k < depth; k++) {
                for (long c = 0; c < cols; c++) panel[k * TILE_COLS + c] = B[k * bRow + n0 + c];
                for (long c = cols; c < TILE_COLS; c++) panel[k * TILE_COLS + c] = 0.f;
            }
        }
    }
}

/// Kᵀ in packColumns' panels: out[panel·depth·TILE_COLS + d·TILE_COLS + c] = K[(panel·TILE_COLS + c)·kRow + d]
/// for d < depth, keys past N zero. With 8 lanes, 8 keys x 8 dimensions at a time through an
/// in-register transpose (8 row loads, 24 shuffles, 8 stores instead of 64 scalar moves: for short
/// sequences the packing is a fair share of a head's work); the rest element by element.
static void packKeysTransposed(float *out, const float *K, long kRow, long depth, long N) {
    for (long n0 = 0; n0 < N; n0 += TILE_COLS) {
        float *panel = out + n0 * depth;
        for (long c0 = 0; c0 < TILE_COLS; c0 += LANES) {
            long d0 = 0;
#if LANES == 8
            if (n0 + c0 + 8 <= N) {
                const float *k0 = K + (n0 + c0) * kRow;
                for (; d0 + 8 <= depth; d0 += 8) {
                    fv r[8];
                    for (int i = 0; i < 8; i++) r[i] = load(k0 + i * kRow + d0);
                    fv t[8], u[8];
                    for (int i = 0; i < 4; i++) {
                        t[2 * i] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
                        t[2 * i + 1] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
                    }
                    for (int h = 0; h < 2; h++) {   // keys 0-3, then 4-7
                        fv *tt = t + 4 * h, *uu = u + 4 * h;
                        uu[0] = __builtin_shufflevector(tt[0], tt[2], 0, 1, 8, 9, 4, 5, 12, 13);
                        uu[1] = __builtin_shufflevector(tt[0], tt[2], 2, 3, 10, 11, 6, 7, 14, 15);
                        uu[2] = __builtin_shufflevector(tt[1], tt[3], 0, 1, 8, 9, 4, 5, 12, 13);
                        uu[3] = __builtin_shufflevector(tt[1], tt[3], 2, 3, 10, 11, 6, 7, 14, 15);
                    }
                    for (int i = 0; i < 4; i++) {   // u[i]: dimensions i and i + 4 of keys 0-3; u[i + 4]: of keys 4-7
                        store(panel + (d0 + i) * TILE_COLS + c0, __builtin_shufflevector(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11));
                        store(panel + (d0 + i + 4) * TILE_COLS + c0,
                              __builtin_shufflevector(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15));
                    }
                }
            }
#endif
            for (long d = d0; d < depth; d++)
                for (long c = c0; c < c0 + LANES; c++) panel[d * TILE_COLS + c] = n0 + c < N ? K[(n0 + c) * kRow + d] : 0.f;
        }
    }
}

/// Query rows of one forward block at this (panel-padded) length: as many whole register tiles as
/// keep the block's scores within ATTENTION_BLOCK_FLOATS (20 KB of a 32 KB L1), at least one tile.
INLINE long forwardBlockRows(long paddedLength) {
    long rows = ATTENTION_BLOCK_FLOATS / paddedLength / TILE_ROWS * TILE_ROWS;
    if (rows > ATTENTION_MAX_BLOCK_ROWS) rows = ATTENTION_MAX_BLOCK_ROWS;
    return rows < TILE_ROWS ? TILE_ROWS : rows;
}

void NAME(srdpr_attention_forward)(float *context, float *probabilities, const float *query, const float *key,
                                   const float *value, long length, long headDim, long stride, long qkvStride,
                                   float scale, const int32_t *keyMask, int dropout, uint64_t rowKey, float p,
                                   long head, float *scratch) {
    // Scratch: Kᵀ and V packed into panels once per head, then one block's scores at a time. Q and
    // the probabilities are read where they are (their rows broadcast), never packed.
    const long paddedLength = roundUp(length, TILE_COLS);
    float *keysPacked = scratch;                                   // headDim x paddedLength
    float *valuesPacked = keysPacked + headDim * paddedLength;     // length x roundUp(headDim)
    float *block = valuesPacked + length * roundUp(headDim, TILE_COLS);  // blockRows x paddedLength
    packKeysTransposed(keysPacked, key, qkvStride, headDim, length);  // B(d, j) = K[j, d]
    packRowPanels(valuesPacked, value, qkvStride, length, headDim);
    int anyKey = keyMask == NULL;
    for (long j = 0; j < length && !anyKey; j++) anyKey = keyMask[j] != 0;
    const long blockRows = forwardBlockRows(paddedLength);
    float scales[ATTENTION_MAX_BLOCK_ROWS], inverseSums[ATTENTION_MAX_BLOCK_ROWS];
    fv maxima[ATTENTION_MAX_BLOCK_ROWS];
    for (long i = 0; i < blockRows; i++) scales[i] = scale;
    for (long first = 0; first < length; first += blockRows) {
        long rows = length - first < blockRows ? length - first : blockRows;
        // scores = scale · Q Kᵀ for the block's rows, with each row's maximum (unless keys are masked).
        for (long i = 0; i < rows; i++) maxima[i] = splat(-__builtin_inff());
        broadcastProduct(block, paddedLength, query + first * qkvStride, qkvStride, keysPacked, rows, length, headDim,
                         scales, keyMask ? NULL : maxima);
        // Softmax numerators, (kept: normalised,) dropout; the normalisation waits for the context
        // rows (one multiply per row and head column instead of one per row and key).
        for (long i = 0; i < rows; i++) {
            float *row = block + i * paddedLength, maximum = -__builtin_inff();
            if (keyMask) {
                for (long j = 0; j < length; j++)
                    if (keyMask[j] != 0 && row[j] > maximum) maximum = row[j];
            } else {
                maximum = maxLanes(maxima[i]);
            }
            inverseSums[i] = 1.f / softmaxNumerators(row, length, keyMask, anyKey, maximum);
            if (probabilities) {
                float *kept = probabilities + (first + i) * length;
                long j = 0;
                for (; j + LANES <= length; j += LANES) store(kept + j, load(row + j) * splat(inverseSums[i]));
                for (; j < length; j++) kept[j] = row[j] * inverseSums[i];
            }
            if (dropout) dropAttentionRow(row, length, head, first + i, rowKey, p);
        }
        // context rows = (dropped) numerators · V / their sums.
        broadcastProduct(context + first * stride, stride, block, paddedLength, valuesPacked, rows, headDim, length,
                         inverseSums, NULL);
    }
}

void NAME(srdpr_attention_backward)(float *dQuery, float *dKey, float *dValue, const float *dContext,
                                    const float *probabilities, const float *query, const float *key,
                                    const float *value, long length, long headDim, long stride, long qkvStride,
                                    float scale, int dropout, uint64_t rowKey, float p, long head, float *scratch) {
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
    packColumns(packedB, value, 1, qkvStride, headDim, L);
    tileProduct(dScores, L, packedA, packedB, L, L, headDim, 1.f);
    if (dropout) NAME(srdpr_dropout_backward_where_kept)(dScores, dropped, LL, 1.f / (1.f - p));
    NAME(srdpr_softmax_backward_rows)(dScores, probabilities, L, L, scale);
    // dQ = dScores · K ; dK = dScoresᵀ · Q.
    packRows(packedA, dScores, L, 1, L, L);
    packColumns(packedB, key, qkvStride, 1, L, headDim);
    tileProduct(dQuery, stride, packedA, packedB, L, headDim, L, 1.f);
    packRows(packedA, dScores, 1, L, L, L);
    packColumns(packedB, query, qkvStride, 1, L, headDim);
    tileProduct(dKey, stride, packedA, packedB, L, headDim, L, 1.f);
}

#undef TILE_ROWS
#undef TILE_COLS
#undef ATTENTION_BLOCK_FLOATS
#undef ATTENTION_MAX_BLOCK_ROWS
