// The vector type of LANES floats and the lane-wise helpers every kernel body builds on; included
// first by kernels-body.h and by gemm-avx512.c (whose GELU epilogue runs gelu-vector.h). The includer
// defines LANES first.
#ifndef SRDPR_VECTOR_BASICS_H
#define SRDPR_VECTOR_BASICS_H
#include <stdint.h>
#include <string.h>

typedef float fv __attribute__((vector_size(4 * LANES)));
typedef int32_t iv __attribute__((vector_size(4 * LANES)));


#define INLINE static inline __attribute__((always_inline))

INLINE fv splat(float v) {
    fv r;
    for (int i = 0; i < LANES; i++) r[i] = v;  // not 0 + v, which turns -0 into +0
    return r;
}
INLINE fv load(const float *p) { fv v; memcpy(&v, p, sizeof v); return v; }
INLINE void store(float *p, fv v) { memcpy(p, &v, sizeof v); }
INLINE iv loadInt(const int32_t *p) { iv v; memcpy(&v, p, sizeof v); return v; }
/// a where mask is set, else b.
INLINE fv select(iv mask, fv a, fv b) { return (fv)((mask & (iv)a) | (~mask & (iv)b)); }
/// The mask of lanes [0, n): all lanes for n >= LANES, none for n <= 0 (a vector's partial tail).
INLINE iv lanesBelow(long n) {
    iv lane;
    for (int i = 0; i < LANES; i++) lane[i] = i;
    return lane < (iv){} + (int32_t)(n < 0 ? 0 : n > LANES ? LANES : n);
}
INLINE fv vmax(fv a, fv b) { return select(a > b, a, b); }
INLINE fv vmin(fv a, fv b) { return select(a < b, a, b); }
INLINE float sumLanes(fv v) {
    float s = 0;
    for (int i = 0; i < LANES; i++) s += v[i];
    return s;
}
INLINE float maxLanes(fv v) {
    // Halving (log2 LANES steps, not a chain of LANES - 1 dependent compares: the softmax takes one
    // per row); max is exact, so the order does not change the result.
    float lanes[LANES];
    store(lanes, v);
    for (int width = LANES / 2; width >= 1; width /= 2)
        for (int i = 0; i < width; i++) lanes[i] = lanes[i + width] > lanes[i] ? lanes[i + width] : lanes[i];
    return lanes[0];
}
#endif
