// The kernels' bodies, included three times: by kernels-avx512.c (16 lanes), kernels-avx2.c (8 lanes,
// AVX2 + FMA) and kernels-baseline.c (4 lanes, SSE2), which name them NAME(f) = f_avx512 / f_avx2 /
// f_baseline; dispatch.c picks one per process from the CPU. Each includer defines LANES and NAME first.
#include "vector-basics.h"

/// e^x to about 1 ulp: x = n ln2 + r with |r| <= ln2/2, e^r by its degree-7 Taylor polynomial
/// (truncation < 6e-9 relative), 2^n put into the exponent bits. Below -87.33 (where fp32 e^x
/// would be subnormal) the result is 0; above 88.37 it saturates at 2^127 * e^r (finite).
INLINE fv expVector(fv x) {
    iv underflow = x < splat(-87.33654f);
    x = vmin(vmax(x, splat(-87.33654f)), splat(88.37f));
    const fv shifter = splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
    fv shifted = x * splat(1.44269504088896341f) + shifter;
    fv n = shifted - shifter;
    fv r = x - n * splat(0.693145751953125f);  // ln 2, high bits (exact product for |n| < 2^9)
    r = r - n * splat(1.428606765330187e-06f);  // ln 2, low bits
    fv p = splat(1.f / 5040);
    p = p * r + splat(1.f / 720);
    p = p * r + splat(1.f / 120);
    p = p * r + splat(1.f / 24);
    p = p * r + splat(1.f / 6);
    p = p * r + splat(0.5f);
    p = p * r + splat(1.f);
    p = p * r + splat(1.f);
    iv exponent = ((iv)shifted - (iv)shifter) << 23;
    fv scale = (fv)(exponent + (iv)splat(1.f));
    return select(underflow, splat(0.f), p * scale);
}

/// erf(x), fitted by scripts/fit-erf.py to below 2e-8 relative / 1e-8 absolute error before
/// fp32 rounding: |x| < 0.921875: x·P(x²) (degree 5, relative fit); |x| < 3.925:
/// 1 - exp(R(|x| - 2.4234375) - x²) with R ≈ log(erfc x) + x² (degree 8); beyond, ±1 (erfc < 2^-25).
INLINE fv erfVector(fv x) {
    const iv signBit = (iv)splat(-0.f);
    fv a = (fv)((iv)x & ~signBit);
    fv z = a * a;
    fv small = splat(-0.0005991140462166256f);
    small = small * z + splat(0.004993247929274289f);
    small = small * z + splat(-0.02676667443041794f);
    small = small * z + splat(0.11281818361109358f);
    small = small * z + splat(-0.3761249402546335f);
    small = small * z + splat(1.1283791497031632f);
    small = small * a;
    fv c = vmin(a, splat(3.925f));
    fv u = c - splat(2.4234375f);
    fv big = splat(1.6306650892361496e-06f);
    big = big * u + splat(-1.42793539265329e-05f);
    big = big * u + splat(8.472263784142786e-05f);
    big = big * u + splat(-0.0004574426409296728f);
    big = big * u + splat(0.0023331048295271856f);
    big = big * u + splat(-0.01154687134352245f);
    big = big * u + splat(0.058678465975255785f);
    big = big * u + splat(-0.361466894952948f);
    big = big * u + splat(-1.5294793262530528f);
    big = splat(1.f) - expVector(big - c * c);
    big = select(a >= splat(3.925f), splat(1.f), big);
    fv magnitude = select(a < splat(0.921875f), small, big);
    magnitude = select(a != a, a, magnitude);  // NaN stays NaN (the clamp above would make it 1)
    return (fv)((iv)magnitude | ((iv)x & signBit));
}

#include "gelu-vector.h"

/// e^d for d <= 0 as expVector computes it (n = round(d / ln 2), r = d - n ln 2 in two parts, so
/// the error does not grow with |d|), but with one clamp instead of three: below -87.34 (fp32's
/// normal range) the result is exactly 0, and so is e^-inf.
INLINE fv expOfNonPositive(fv d) {
    d = vmax(d, splat(-88.f));  // n = -127 from -87.68 down: exactly 0 (timesPowerOfTwo)
    fv shifted = d * splat(1.44269504088896341f) + splat(EXP_SHIFTER);
    fv n = shifted - splat(EXP_SHIFTER);
    fv r = d - n * splat(0.693145751953125f);  // ln 2, high bits (exact product for |n| < 2^9)
    r = r - n * splat(1.428606765330187e-06f);  // ln 2, low bits
    return timesPowerOfTwo(exp2Fraction(r * splat(1.44269504088896341f)), shifted, 1.f);
}

/// Defines kernel(out, input, count) = vectorFunction of every element; the tail runs on a
/// zero-padded copy so it gets the same arithmetic as the body.
#define ELEMENTWISE_MAP(kernel, vectorFunction) \
    void NAME(kernel)(float *out, const float *input, long count) { \
        long whole = count & ~(long)(LANES - 1); \
        for (long i = 0; i < whole; i += LANES) store(out + i, vectorFunction(load(input + i))); \
        if (whole < count) { \
            float x[LANES] = {0}, y[LANES]; \
            memcpy(x, input + whole, (count - whole) * sizeof(float)); \
            store(y, vectorFunction(load(x))); \
            memcpy(out + whole, y, (count - whole) * sizeof(float)); \
        } \
    }

ELEMENTWISE_MAP(srdpr_erf, erfVector)

/// GELU(x) = x Φ(x) (the erf form: Φ(x) = 0.5 (1 + erf(x / √2))).
INLINE fv geluVector(fv x) { return x * phiVector(x); }

ELEMENTWISE_MAP(srdpr_gelu_forward, geluVector)


void NAME(srdpr_gelu_forward_derivative)(float *out, float *derivative, const float *input, long count) {
    long whole = count & ~(long)(LANES - 1);
    fv cdf, d;
    for (long i = 0; i < whole; i += LANES) {
        fv x = load(input + i);
        geluParts(x, &cdf, &d);
        store(out + i, x * cdf);
        store(derivative + i, d);
    }
    if (whole < count) {
        float x[LANES] = {0}, y[LANES], dy[LANES];
        memcpy(x, input + whole, (count - whole) * sizeof(float));
        geluParts(load(x), &cdf, &d);
        store(y, load(x) * cdf);
        store(dy, d);
        memcpy(out + whole, y, (count - whole) * sizeof(float));
        memcpy(derivative + whole, dy, (count - whole) * sizeof(float));
    }
}

void NAME(srdpr_gelu_backward)(float *dInput, const float *dOut, const float *input, long count) {
    long whole = count & ~(long)(LANES - 1);
    fv cdf, d;
    for (long i = 0; i < whole; i += LANES) {
        geluParts(load(input + i), &cdf, &d);
        store(dInput + i, load(dOut + i) * d);
    }
    if (whole < count) {
        float x[LANES] = {0}, g[LANES] = {0}, y[LANES];
        memcpy(x, input + whole, (count - whole) * sizeof(float));
        memcpy(g, dOut + whole, (count - whole) * sizeof(float));
        geluParts(load(x), &cdf, &d);
        store(y, load(g) * d);
        memcpy(dInput + whole, y, (count - whole) * sizeof(float));
    }
}

void NAME(srdpr_multiply)(float *x, const float *y, long count) {
    for (long i = 0; i < count; i++) x[i] *= y[i];
}

void NAME(srdpr_multiply_sum_rows)(float *x, const float *y, float *columnSums, long rows, long dim) {
    for (long r = 0; r < rows; r++) {
        float *row = x + r * dim;
        const float *factor = y + r * dim;
        for (long i = 0; i < dim; i++) {
            float product = row[i] * factor[i];
            row[i] = product;
            columnSums[i] += product;
        }
    }
}

void NAME(srdpr_add)(float *out, const float *a, const float *b, long count) {
    for (long i = 0; i < count; i++) out[i] = a[i] + b[i];
}

/// Rows per block of srdpr_sum_rows: 64 rows of MiniLM's 384 columns (96 KB) stay in L2 while each
/// chunk of columns passes over them.
#define SUM_ROWS_BLOCK 64
#define SUM_ROWS_VECTORS 8

void NAME(srdpr_sum_rows)(float *columnSums, const float *x, long rows, long dim) {
    for (long r0 = 0; r0 < rows; r0 += SUM_ROWS_BLOCK) {
        long r1 = rows - r0 < SUM_ROWS_BLOCK ? rows : r0 + SUM_ROWS_BLOCK;
        long c = 0;
        // A chunk of columns' sums in registers over the block's rows (srdpr_add loads and stores
        // them once per row); each column still adds its rows one by one in order.
        for (; c + SUM_ROWS_VECTORS * LANES <= dim; c += SUM_ROWS_VECTORS * LANES) {
            fv sums[SUM_ROWS_VECTORS];
            for (int v = 0; v < SUM_ROWS_VECTORS; v++) sums[v] = load(columnSums + c + v * LANES);
            for (long r = r0; r < r1; r++)
                for (int v = 0; v < SUM_ROWS_VECTORS; v++) sums[v] += load(x + r * dim + c + v * LANES);
            for (int v = 0; v < SUM_ROWS_VECTORS; v++) store(columnSums + c + v * LANES, sums[v]);
        }
        for (; c + LANES <= dim; c += LANES) {
            fv sum = load(columnSums + c);
            for (long r = r0; r < r1; r++) sum += load(x + r * dim + c);
            store(columnSums + c, sum);
        }
        for (; c < dim; c++) {
            float sum = columnSums[c];
            for (long r = r0; r < r1; r++) sum += x[r * dim + c];
            columnSums[c] = sum;
        }
    }
}
#undef SUM_ROWS_BLOCK
#undef SUM_ROWS_VECTORS

void NAME(srdpr_softmax_rows)(float *scores, long rows, long length, const int32_t *keyMask) {
    long whole = length & ~(long)(LANES - 1);
    int anyKey = keyMask == NULL;
    for (long j = 0; j < length && !anyKey; j++) anyKey = keyMask[j] != 0;
    const fv minusInfinity = splat(-__builtin_inff());
    for (long r = 0; r < rows; r++) {
        float *row = scores + r * length;
        if (!anyKey) {
            for (long j = 0; j < length; j++) row[j] = 1.f / (float)length;
            continue;
        }
        fv maxima = minusInfinity;
        float tailMax = -__builtin_inff();
        for (long j = 0; j < whole; j += LANES) {
            fv x = load(row + j);
            if (keyMask) x = select(loadInt(keyMask + j) != 0, x, minusInfinity);
            maxima = vmax(maxima, x);
        }
        for (long j = whole; j < length; j++)
            if ((!keyMask || keyMask[j] != 0) && row[j] > tailMax) tailMax = row[j];
        float m = maxLanes(maxima);
        if (tailMax > m) m = tailMax;
        fv sums = splat(0.f);
        for (long j = 0; j < whole; j += LANES) {
            fv e = expOfNonPositive(load(row + j) - splat(m));
            if (keyMask) e = select(loadInt(keyMask + j) != 0, e, splat(0.f));
            sums += e;
            store(row + j, e);
        }
        if (whole < length) {
            float x[LANES], e[LANES];
            for (int k = 0; k < LANES; k++) x[k] = whole + k < length ? row[whole + k] - m : -__builtin_inff();
            store(e, expOfNonPositive(load(x)));
            for (long j = whole; j < length; j++) {
                float value = (!keyMask || keyMask[j] != 0) ? e[j - whole] : 0.f;
                row[j] = value;
                sums[0] += value;
            }
        }
        fv inverse = splat(1.f / sumLanes(sums));
        for (long j = 0; j < whole; j += LANES) store(row + j, load(row + j) * inverse);
        for (long j = whole; j < length; j++) row[j] *= inverse[0];
    }
}

void NAME(srdpr_softmax_backward_rows)(float *grad, const float *probs, long rows, long length, float scale) {
    long whole = length & ~(long)(LANES - 1);
    for (long r = 0; r < rows; r++) {
        float *g = grad + r * length;
        const float *p = probs + r * length;
        fv dots = splat(0.f);
        for (long j = 0; j < whole; j += LANES) dots += load(p + j) * load(g + j);
        float dot = sumLanes(dots);
        for (long j = whole; j < length; j++) dot += p[j] * g[j];
        fv d = splat(dot), s = splat(scale);
        for (long j = 0; j < whole; j += LANES) store(g + j, load(p + j) * (load(g + j) - d) * s);
        for (long j = whole; j < length; j++) g[j] = p[j] * (g[j] - dot) * scale;
    }
}

INLINE uint64_t splitMixFinalize(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/// Positions [i, i + lanes) of a row from one hash (lanes <= 4, all inside one group of four).
INLINE void dropFromHash(float *x, uint64_t bits, long index, long lanes, uint64_t threshold, float scale) {
    for (long lane = 0; lane < lanes; lane++) {
        uint64_t u = (bits >> (16 * ((index + lane) & 3))) & 0xffff;
        x[lane] = u >= threshold ? x[lane] * scale : 0.f;
    }
}

void NAME(srdpr_dropout_row)(float *x, long count, uint64_t rowKey, float p, long start) {
    const uint64_t threshold = (uint64_t)((double)p * 65536.0);
    const float scale = 1.f / (1.f - p);
    const uint64_t key = rowKey + 0x9E3779B97F4A7C15ULL;  // DropoutContext.mix adds the increment
    long i = 0;
    // Scalar (one hash per group of four) up to a 16-position boundary, and for everything when p
    // rounds to 1 (threshold past 16 bits).
#define DROP_SCALAR_WHILE(condition) \
    while (i < count && (condition)) { \
        long index = start + i, lanes = 4 - (index & 3); \
        if (lanes > count - i) lanes = count - i; \
        dropFromHash(x + i, splitMixFinalize(key + (uint64_t)(index >> 2)), index, lanes, threshold, scale); \
        i += lanes; \
    }
    DROP_SCALAR_WHILE(((start + i) & 15) != 0)
    // Blocks of DROP_BLOCK positions = DROP_BLOCK / 4 groups: their hashes side by side in 64-bit
    // lanes, whose 16-bit pieces (little-endian) are the positions' uniforms in order. 16 positions
    // (4 hashes, 256 bits) below 16 lanes; 32 (8 hashes, one zmm) with 16. Exact integer arithmetic:
    // the same masks at every width.
#if LANES >= 16
#define DROP_BLOCK 32
#else
#define DROP_BLOCK 16
#endif
    typedef uint64_t hashes __attribute__((vector_size(2 * DROP_BLOCK)));
    typedef uint16_t uniforms __attribute__((vector_size(2 * DROP_BLOCK)));
    typedef int32_t keeps __attribute__((vector_size(4 * DROP_BLOCK)));
    typedef float values __attribute__((vector_size(4 * DROP_BLOCK)));
    if (threshold <= 0xffff) {
        const uniforms limit = (uniforms){0} + (uint16_t)threshold;
        hashes groupOffsets;
        for (int g = 0; g < DROP_BLOCK / 4; g++) groupOffsets[g] = (uint64_t)g;
        // The last, partial block too: its whole block of hashes, applied to the positions that
        // exist (lengths like 117 left up to 31 positions to the scalar loop, a hash per 4).
        for (; i < count; i += DROP_BLOCK) {
            hashes z = groupOffsets + ((uint64_t)((start + i) >> 2) + key);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
            z = z ^ (z >> 31);
            keeps keep = __builtin_convertvector((uniforms)z >= limit, keeps);
            if (i + DROP_BLOCK <= count) {
                values v;
                memcpy(&v, x + i, sizeof v);
                v = (values)(keep & (keeps)(v * scale));
                memcpy(x + i, &v, sizeof v);
            } else {   // without branches: the keep bits are random
                int32_t keepBits[DROP_BLOCK];
                memcpy(keepBits, &keep, sizeof keep);
                for (long k = 0; k < count - i; k++) {
                    float scaled = x[i + k] * scale;
                    int32_t bits;
                    memcpy(&bits, &scaled, sizeof bits);
                    bits &= keepBits[k];
                    memcpy(x + i + k, &bits, sizeof bits);
                }
            }
        }
    }
#undef DROP_BLOCK
    DROP_SCALAR_WHILE(1)
#undef DROP_SCALAR_WHILE
}

void NAME(srdpr_dropout_backward_where_kept)(float *grad, const float *kept, long count, float scale) {
    for (long i = 0; i < count; i++) grad[i] = kept[i] != 0.f ? grad[i] * scale : 0.f;
}

/// One LayerNorm row: y = (x - mean) * rstd * gamma + beta; the kernels below share it so the
/// residual-fused form gives the plain form's bits.
INLINE void layerNormRow(float *y, float *mean, float *rstd, const float *x, const float *gamma, const float *beta,
                         long dim, float eps) {
    long whole = dim & ~(long)(LANES - 1);
    fv sums = splat(0.f);
    for (long i = 0; i < whole; i += LANES) sums += load(x + i);
    float m = sumLanes(sums);
    for (long i = whole; i < dim; i++) m += x[i];
    m /= (float)dim;
    fv squares = splat(0.f);
    for (long i = 0; i < whole; i += LANES) { fv d = load(x + i) - splat(m); squares += d * d; }
    float variance = sumLanes(squares);
    for (long i = whole; i < dim; i++) { float d = x[i] - m; variance += d * d; }
    variance /= (float)dim;
    float s = 1.f / __builtin_sqrtf(variance + eps);
    for (long i = 0; i < whole; i += LANES)
        store(y + i, (load(x + i) - splat(m)) * splat(s) * load(gamma + i) + load(beta + i));
    for (long i = whole; i < dim; i++) y[i] = (x[i] - m) * s * gamma[i] + beta[i];
    if (mean) *mean = m;
    if (rstd) *rstd = s;
}

void NAME(srdpr_layernorm_forward)(float *out, float *mean, float *rstd, const float *input, const float *gamma,
                                    const float *beta, long rows, long dim, float eps) {
    for (long r = 0; r < rows; r++)
        layerNormRow(out + r * dim, mean ? mean + r : NULL, rstd ? rstd + r : NULL, input + r * dim, gamma, beta, dim, eps);
}

void NAME(srdpr_residual_layernorm_forward)(float *out, float *sum, float *mean, float *rstd, const float *input,
                                             const float *residual, const float *gamma, const float *beta, long rows,
                                             long dim, float eps) {
    // Without `sum` each row's sum lives in this row buffer (L1) and never goes to memory.
    float rowSum[sum ? 1 : dim];
    long whole = dim & ~(long)(LANES - 1);
    for (long r = 0; r < rows; r++) {
        const float *a = input + r * dim, *b = residual + r * dim;
        float *x = sum ? sum + r * dim : rowSum;
        // srdpr_add's arithmetic: one fp32 addition per element.
        for (long i = 0; i < whole; i += LANES) store(x + i, load(a + i) + load(b + i));
        for (long i = whole; i < dim; i++) x[i] = a[i] + b[i];
        layerNormRow(out + r * dim, mean ? mean + r : NULL, rstd ? rstd + r : NULL, x, gamma, beta, dim, eps);
    }
}

void NAME(srdpr_layernorm_backward_input)(float *dInput, const float *dOut, const float *input, const float *gamma,
                                           const float *mean, const float *rstd, long rows, long dim) {
    long whole = dim & ~(long)(LANES - 1);
    for (long r = 0; r < rows; r++) {
        const float *x = input + r * dim, *dy = dOut + r * dim;
        float *dx = dInput + r * dim;
        float m = mean[r], s = rstd[r];
        fv sumD = splat(0.f), sumDX = splat(0.f);
        for (long i = 0; i < whole; i += LANES) {
            fv xhat = (load(x + i) - splat(m)) * splat(s);
            fv d = load(gamma + i) * load(dy + i);
            sumD += d;
            sumDX += d * xhat;
        }
        float meanD = sumLanes(sumD), meanDX = sumLanes(sumDX);
        for (long i = whole; i < dim; i++) {
            float xhat = (x[i] - m) * s, d = gamma[i] * dy[i];
            meanD += d;
            meanDX += d * xhat;
        }
        meanD /= (float)dim;
        meanDX /= (float)dim;
        for (long i = 0; i < whole; i += LANES) {
            fv xhat = (load(x + i) - splat(m)) * splat(s);
            store(dx + i, (load(gamma + i) * load(dy + i) - splat(meanD) - xhat * splat(meanDX)) * splat(s));
        }
        for (long i = whole; i < dim; i++) {
            float xhat = (x[i] - m) * s;
            dx[i] = (gamma[i] * dy[i] - meanD - xhat * meanDX) * s;
        }
    }
}

void NAME(srdpr_layernorm_backward_parameters)(float *dGamma, float *dBeta, const float *dOut, const float *input,
                                                const float *mean, const float *rstd, long rows, long dim) {
    for (long r = 0; r < rows; r++) {
        const float *x = input + r * dim, *dy = dOut + r * dim;
        float m = mean[r], s = rstd[r];
        for (long i = 0; i < dim; i++) {
            dBeta[i] += dy[i];
            dGamma[i] += (x[i] - m) * s * dy[i];
        }
    }
}

// One element range of srdpr_adamw; `scales` is a constant at each call, so each loop vectorises
// without a branch inside.
INLINE void adamw_elements(float *parameters, float *gradients, float *m, float *v, long count, int scales,
                    float gradientScale, float decayFactor, int decays, float oneMinusBeta1, float beta2,
                    float oneMinusBeta2, float stepSize, float biasCorrection2Sqrt, float eps) {
    // The same roundings as torch's (and the scalar code's) unfused arithmetic.
#pragma clang fp contract(off)
    for (long i = 0; i < count; i++) {
        float g = gradients[i];
        if (scales) {
            g = g * gradientScale;
            gradients[i] = g;
        }
        float p = decays ? parameters[i] * decayFactor : parameters[i];
        float mi = m[i] + oneMinusBeta1 * (g - m[i]);
        float vi = v[i] * beta2 + oneMinusBeta2 * (g * g);
        m[i] = mi;
        v[i] = vi;
        float denominator = __builtin_elementwise_sqrt(vi) / biasCorrection2Sqrt + eps;
        parameters[i] = p + (-stepSize) * (mi / denominator);
    }
}

void NAME(srdpr_adamw)(float *parameters, float *gradients, float *m, float *v, long count, float gradientScale,
                        float decayFactor, int decays, float oneMinusBeta1, float beta2, float oneMinusBeta2,
                        float stepSize, float biasCorrection2Sqrt, float eps) {
    if (gradientScale != 1.0f) {
        adamw_elements(parameters, gradients, m, v, count, 1, gradientScale, decayFactor, decays, oneMinusBeta1, beta2,
                       oneMinusBeta2, stepSize, biasCorrection2Sqrt, eps);
    } else {
        adamw_elements(parameters, gradients, m, v, count, 0, 1.0f, decayFactor, decays, oneMinusBeta1, beta2,
                       oneMinusBeta2, stepSize, biasCorrection2Sqrt, eps);
    }
}
