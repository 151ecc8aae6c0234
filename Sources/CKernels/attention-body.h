// Fused attention of one (sequence, head), included after kernels-body.h by every kernels-*.c
// clone (same LANES / NAME). The products are small (one side is headDim = 32..64, or
// the sequence length) and run through one register-tiled loop, `broadcastTile`. Only the operands
// of size length x headDim are packed, once per head; those of size length² (probabilities, score
// gradients) are broadcast where they lie: packing them cost as much as the products at headDim 32.
// Forward works on blocks of query rows so a block's [rows, length] scores stay in L1 between the
// product, the softmax, the dropout and the weighted sum (nothing of size length² is written unless
// the probabilities are kept for backward).

/// Scores of one forward block of query rows: 5120 floats = 20 KB of a 32 KB L1 (18 rows at length
/// 256), at most ATTENTION_MAX_BLOCK_ROWS rows. dispatch.c's srdpr_attention_scratch assumes both.
#define ATTENTION_BLOCK_FLOATS 5120
#define ATTENTION_MAX_BLOCK_ROWS 120
/// Output rows and columns of one register tile: 6 x 2 vectors = 12 accumulators (+ 2 B vectors
/// + 1 broadcast = 15 of AVX2's 16 vector registers), enough independent FMAs to cover their latency.
/// Columns are 2 vectors at every width, so dispatch.c's srdpr_attention_scratch pads to the widest.
#define TILE_ROWS 6
#define TILE_COLS (2 * LANES)

INLINE long roundUp(long n, long multiple) { return (n + multiple - 1) / multiple * multiple; }

/// The products' B operand is packed into panels of TILE_COLS columns, k-major:
/// out[panel·depth·TILE_COLS + k·TILE_COLS + c] = B(k, panel·TILE_COLS + c), zero past the last column,
/// so the inner loop reads it sequentially whatever the source's stride (a row stride of 1 to 3 KB,
/// the hidden size, maps a column walk onto a few L1 sets and thrashes it).

/// One row of score gradients in place from the gradient of the probabilities V was multiplied by:
/// back through dropout (kept where `dropped` is nonzero, times keepScale; `dropped` NULL: no
/// dropout) and the softmax, times the score scale. The operations of
/// srdpr_dropout_backward_where_kept then srdpr_softmax_backward_rows, row by row, so the row
/// stays in L1 between the two passes (the same bits).
INLINE void scoreGradientRow(float *g, const float *probs, const float *dropped, long length, float keepScale, float scale) {
    const long whole = length & ~(long)(LANES - 1);
    fv dots = splat(0.f);
    for (long j = 0; j < whole; j += LANES) {
        fv x = load(g + j);
        if (dropped) {
            x = select(load(dropped + j) != splat(0.f), x * splat(keepScale), splat(0.f));
            store(g + j, x);
        }
        dots += load(probs + j) * x;
    }
    if (dropped)
        for (long j = whole; j < length; j++) g[j] = dropped[j] != 0.f ? g[j] * keepScale : 0.f;
    float dot = sumLanes(dots);
    for (long j = whole; j < length; j++) dot += probs[j] * g[j];
    fv d = splat(dot), s = splat(scale);
    for (long j = 0; j < whole; j += LANES) store(g + j, load(probs + j) * (load(g + j) - d) * s);
    for (long j = whole; j < length; j++) g[j] = probs[j] * (g[j] - dot) * scale;
}

/// Dropout of attention row `row` of `head`: the grid start Attention.dropProbabilities keys it by.
INLINE void dropAttentionRow(float *x, long length, long head, long row, uint64_t rowKey, float p) {
    NAME(srdpr_dropout_row)(x, length, rowKey, p, (head * 4096 + row) * 4096);
}

/// Stores lanes [0, n) of v at p (n <= LANES), nothing past them: a masked store where the
/// instruction set has one (clang's builtins behind _mm512_mask_storeu_ps / _mm256_maskstore_ps:
/// immintrin.h would clash with kernels-body.h's names), else lane by lane. (memcpy of a variable
/// length was a library call per tile row.)
INLINE void storeFirst(float *p, fv v, long n) {
    if (n >= LANES) {
        store(p, v);
        return;
    }
#if LANES == 16
    __builtin_ia32_storeups512_mask(p, v, (unsigned short)((1u << n) - 1));
#elif LANES == 8
    __builtin_ia32_maskstoreps256((fv *)p, lanesBelow(n), v);
#else
    for (long c = 0; c < n; c++) p[c] = v[c];
#endif
}

/// The loops over a tile's rows, unrolled whatever the row count (a constant where broadcastTile is
/// inlined): only then does clang keep the accumulators in registers; otherwise they live on the
/// stack around the k loop and every tile pays 2-3 memory round trips per accumulator (the score
/// products, depth = headDim = 32, ran 20-30% slower).
#define EACH_TILE_ROW(r) _Pragma("clang loop unroll(full)") for (int r = 0; r < rows; r++)

/// C(r, c) = rowScale[r] · Σ_k A(r, k) · B[k·TILE_COLS + c] for r < rows (<= TILE_ROWS), c < cols
/// (<= TILE_COLS), where A(r, k) = A[r·lda + k], or A[k·lda + r] when `transposedA`: A's entries
/// are broadcast straight from where they lie (no packing: a query row, a row of probabilities, or
/// 6 neighbours in a probability row for Pᵀ are contiguous), B is one panel. 12 accumulators, 2 panel
/// loads and `rows` broadcasts per k. `rows` and `transposedA` are constants where it is inlined;
/// rowScale NULL = 1. With `rowMaxima`, each row's running maximum over the columns written is kept
/// there (a vector per row, reduced by the caller), so the softmax needs no pass of its own for it.
INLINE void broadcastTile(float *C, long ldc, const float *A, long lda, const int transposedA, const float *panel,
                          long depth, const float *rowScale, fv *rowMaxima, const int rows, long cols) {
    fv acc[TILE_ROWS][2];
    EACH_TILE_ROW(r) acc[r][0] = acc[r][1] = splat(0.f);
    if (transposedA) {
        // The rows' values at k are neighbours: one pointer, constant offsets.
        for (long k = 0; k < depth; k++) {
            fv b0 = load(panel + k * TILE_COLS), b1 = load(panel + k * TILE_COLS + LANES);
            const float *column = A + k * lda;
            EACH_TILE_ROW(r) {
                fv a = splat(column[r]);
                acc[r][0] += a * b0;
                acc[r][1] += a * b1;
            }
        }
    } else {
        // One pointer per row, indexed by k.
        const float *rowOf[TILE_ROWS];
        EACH_TILE_ROW(r) rowOf[r] = A + r * lda;
        for (long k = 0; k < depth; k++) {
            fv b0 = load(panel + k * TILE_COLS), b1 = load(panel + k * TILE_COLS + LANES);
            EACH_TILE_ROW(r) {
                fv a = splat(rowOf[r][k]);
                acc[r][0] += a * b0;
                acc[r][1] += a * b1;
            }
        }
    }
    if (rowScale) {
        EACH_TILE_ROW(r) {
            fv scale = splat(rowScale[r]);
            acc[r][0] *= scale;
            acc[r][1] *= scale;
        }
    }
    if (cols == TILE_COLS) {
        EACH_TILE_ROW(r) {
            store(C + r * ldc, acc[r][0]);
            store(C + r * ldc + LANES, acc[r][1]);
            if (rowMaxima) rowMaxima[r] = vmax(rowMaxima[r], vmax(acc[r][0], acc[r][1]));
        }
    } else {
        // The last panel of a length that is not a multiple of TILE_COLS (most sequences): lanes
        // from `cols` on are neither stored nor part of the maxima.
        const iv real0 = lanesBelow(cols), real1 = lanesBelow(cols - LANES);
        const fv minusInfinity = splat(-__builtin_inff());
        EACH_TILE_ROW(r) {
            storeFirst(C + r * ldc, acc[r][0], cols);
            if (cols > LANES) storeFirst(C + r * ldc + LANES, acc[r][1], cols - LANES);
            if (rowMaxima)
                rowMaxima[r] = vmax(rowMaxima[r], vmax(select(real0, acc[r][0], minusInfinity), select(real1, acc[r][1], minusInfinity)));
        }
    }
}

/// C[m·ldc + n] = rowScale[m] · Σ_k A(m, k) · B(k, n) for m < M, n < N (A(m, k) as broadcastTile's),
/// B in panels; rowMaxima (or NULL) as broadcastTile's. Each panel stays in L1 across all rows;
/// the last rows' tile is one of five narrower specialisations, so no work is done on rows that do
/// not exist. Inlined, so `transposedA` is a constant at each call.
INLINE void broadcastProduct(float *C, long ldc, const float *A, long lda, const int transposedA, const float *packedB,
                             long M, long N, long depth, const float *rowScale, fv *rowMaxima) {
    for (long n0 = 0; n0 < N; n0 += TILE_COLS) {
        const float *panel = packedB + n0 * depth;
        long cols = N - n0 < TILE_COLS ? N - n0 : TILE_COLS;
        long m0 = 0;
        for (; m0 + TILE_ROWS <= M; m0 += TILE_ROWS)
            broadcastTile(C + m0 * ldc + n0, ldc, transposedA ? A + m0 : A + m0 * lda, lda, transposedA, panel, depth,
                          rowScale ? rowScale + m0 : NULL, rowMaxima ? rowMaxima + m0 : NULL, TILE_ROWS, cols);
        float *c = C + m0 * ldc + n0;
        const float *a = transposedA ? A + m0 : A + m0 * lda, *scale = rowScale ? rowScale + m0 : NULL;
        fv *maxima = rowMaxima ? rowMaxima + m0 : NULL;
        switch (M - m0) {
        case 1: broadcastTile(c, ldc, a, lda, transposedA, panel, depth, scale, maxima, 1, cols); break;
        case 2: broadcastTile(c, ldc, a, lda, transposedA, panel, depth, scale, maxima, 2, cols); break;
        case 3: broadcastTile(c, ldc, a, lda, transposedA, panel, depth, scale, maxima, 3, cols); break;
        case 4: broadcastTile(c, ldc, a, lda, transposedA, panel, depth, scale, maxima, 4, cols); break;
        case 5: broadcastTile(c, ldc, a, lda, transposedA, panel, depth, scale, maxima, 5, cols); break;
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
    if (j < length) {   // one compare for the lanes in range (per-lane inserts cost a row's exps)
        const iv inRange = lanesBelow(length - j);
        iv real = inRange;
        if (keyMask)
            for (int k = 0; k < LANES; k++) real[k] = j + k < length && keyMask[j + k] != 0 ? -1 : 0;
        fv e = select(real, expOfNonPositive(select(inRange, load(row + j), m) - m), splat(0.f));
        sums += e;
        store(row + j, e);
    }
    return sumLanes(sums);
}

/// Packs rows of a [depth, N] matrix with row stride `bRow` (contiguous columns: V's rows) into
/// panels, a vector at a time.
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

/// Kᵀ in panels: out[panel·depth·TILE_COLS + d·TILE_COLS + c] = K[(panel·TILE_COLS + c)·kRow + d]
/// for d < depth, keys past N zero. With 8 or more lanes, 8 keys x 8 dimensions at a time through an
/// in-register transpose (8 row loads, 24 shuffles, 8 stores instead of 64 scalar moves: for short
/// sequences the packing is a fair share of a head's work; 16 lanes do two such blocks per vector
/// of keys), also for the vector of keys that holds the last one; the rest element by element.
static void packKeysTransposed(float *out, const float *K, long kRow, long depth, long N) {
#if LANES >= 8
    typedef float f8 __attribute__((vector_size(32)));
#endif
    for (long n0 = 0; n0 < N; n0 += TILE_COLS) {
        float *panel = out + n0 * depth;
        for (long c0 = 0; c0 < TILE_COLS; c0 += LANES) {
            long d0 = 0;
#if LANES >= 8
            if (n0 + c0 < N) {   // the last keys' vector too, zeros past N (most lengths end in one)
                for (; d0 + 8 <= depth; d0 += 8) {
                    for (long c8 = c0; c8 < c0 + LANES; c8 += 8) {   // 8 keys at a time
                        const float *k0 = K + (n0 + c8) * kRow;
                        const long real = N - (n0 + c8);
                        f8 r[8];
                        for (int i = 0; i < 8; i++) {
                            if (i < real) memcpy(&r[i], k0 + i * kRow + d0, sizeof(f8));
                            else r[i] = (f8){};
                        }
                        f8 t[8], u[8];
                        for (int i = 0; i < 4; i++) {
                            t[2 * i] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
                            t[2 * i + 1] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
                        }
                        for (int h = 0; h < 2; h++) {   // keys 0-3, then 4-7
                            f8 *tt = t + 4 * h, *uu = u + 4 * h;
                            uu[0] = __builtin_shufflevector(tt[0], tt[2], 0, 1, 8, 9, 4, 5, 12, 13);
                            uu[1] = __builtin_shufflevector(tt[0], tt[2], 2, 3, 10, 11, 6, 7, 14, 15);
                            uu[2] = __builtin_shufflevector(tt[1], tt[3], 0, 1, 8, 9, 4, 5, 12, 13);
                            uu[3] = __builtin_shufflevector(tt[1], tt[3], 2, 3, 10, 11, 6, 7, 14, 15);
                        }
                        for (int i = 0; i < 4; i++) {   // u[i]: dimensions i and i + 4 of keys 0-3; u[i + 4]: of keys 4-7
                            f8 low = __builtin_shufflevector(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
                            f8 high = __builtin_shufflevector(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
                            memcpy(panel + (d0 + i) * TILE_COLS + c8, &low, sizeof low);
                            memcpy(panel + (d0 + i + 4) * TILE_COLS + c8, &high, sizeof high);
                        }
                    }
                }
            }
#endif
            if (n0 + c0 >= N) {   // a vector of keys past N (TILE_COLS is two vectors)
                for (; d0 < depth; d0++) store(panel + d0 * TILE_COLS + c0, splat(0.f));
            }
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
        broadcastProduct(block, paddedLength, query + first * qkvStride, qkvStride, 0, keysPacked, rows, length, headDim,
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
        broadcastProduct(context + first * stride, stride, block, paddedLength, 0, valuesPacked, rows, headDim, length,
                         inverseSums, NULL);
    }
}

void NAME(srdpr_attention_backward)(float *dQuery, float *dKey, float *dValue, const float *dContext,
                                    const float *probabilities, const float *query, const float *key,
                                    const float *value, long length, long headDim, long stride, long qkvStride,
                                    float scale, int dropout, uint64_t rowKey, float p, long head, float *scratch) {
    // Scratch: dScores and the dropped probabilities (length² each), then Vᵀ, dContext, K and Q in
    // panels, each packed once. The probabilities and dScores are broadcast where they lie, also
    // transposed (for Pᵀ and dScoresᵀ a tile's 6 rows are 6 neighbours in one row).
    const long L = length, LL = length * length, paddedLength = roundUp(L, TILE_COLS);
    const long panelFloats = L * roundUp(headDim, TILE_COLS);
    float *dScores = scratch, *dropped = dScores + LL;
    float *valuesTransposed = dropped + LL;                           // headDim x paddedLength
    float *dContextPanels = valuesTransposed + headDim * paddedLength;  // length x roundUp(headDim)
    float *keyPanels = dContextPanels + panelFloats, *queryPanels = keyPanels + panelFloats;
    // The probabilities the forward multiplied V by: dropped again from the same keys.
    const float *used = probabilities;
    if (dropout) {
        for (long i = 0; i < L; i++) {   // row by row: each copied row is dropped while in L1
            memcpy(dropped + i * L, probabilities + i * L, L * sizeof(float));
            dropAttentionRow(dropped + i * L, L, head, i, rowKey, p);
        }
        used = dropped;
    }
    // dV = usedᵀ · dContext.
    packRowPanels(dContextPanels, dContext, stride, L, headDim);
    broadcastProduct(dValue, stride, used, L, 1, dContextPanels, L, headDim, L, NULL, NULL);
    // d(used) = dContext · Vᵀ, then back through dropout (kept where the dropped value is nonzero;
    // where P is 0 the softmax backward gives 0 anyway) and softmax, with the score scale folded in.
    packKeysTransposed(valuesTransposed, value, qkvStride, headDim, L);
    broadcastProduct(dScores, L, dContext, stride, 0, valuesTransposed, L, L, headDim, NULL, NULL);
    for (long i = 0; i < L; i++)
        scoreGradientRow(dScores + i * L, probabilities + i * L, dropout ? dropped + i * L : NULL, L, 1.f / (1.f - p), scale);
    // dQ = dScores · K ; dK = dScoresᵀ · Q.
    packRowPanels(keyPanels, key, qkvStride, L, headDim);
    broadcastProduct(dQuery, stride, dScores, L, 0, keyPanels, L, headDim, L, NULL, NULL);
    packRowPanels(queryPanels, query, qkvStride, L, headDim);
    broadcastProduct(dKey, stride, dScores, L, 1, queryPanels, L, headDim, L, NULL, NULL);
}

#undef TILE_ROWS
#undef TILE_COLS
#undef ATTENTION_BLOCK_FLOATS
#undef ATTENTION_MAX_BLOCK_ROWS
