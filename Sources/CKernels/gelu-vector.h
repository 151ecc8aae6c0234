// GELU on one vector (erf form: x Φ(x), and its derivative Φ(x) + x φ(x)), after vector-basics.h.
// One definition for the elementwise kernels (kernels-body.h) and the Linear product's GELU
// epilogue (gemm-avx512.c), so both give the same bits for the same inputs.
#ifndef SRDPR_GELU_VECTOR_H
#define SRDPR_GELU_VECTOR_H

/// 2^r for |r| <= 1/2 (a little beyond is fine) by a degree-6 polynomial fitted by
/// scripts/fit-erf.py: below 2e-9 relative before rounding.
INLINE fv exp2Fraction(fv r) {
    fv p = splat(0.00015345798324008578f);
    p = p * r + splat(0.001339993111029076f);
    p = p * r + splat(0.009618489007988285f);
    p = p * r + splat(0.05550328777304598f);
    p = p * r + splat(0.2402264689016374f);
    p = p * r + splat(0.6931472057370579f);
    p = p * r + splat(1.00000000055423f);
    return p;
}

#define EXP_SHIFTER 12582912.0f  // 1.5 * 2^23: adding it rounds to an integer, kept in the low bits

/// p · 2^n · scaleOfOne, where shifted = n + EXP_SHIFTER and scaleOfOne is 1 or 0.5 (a halving
/// folded into the exponent). At n = -127 (scaleOfOne 1) the exponent field is 0: the result is
/// exactly 0, so callers that clamp their argument there get 0 below fp32's normal range.
INLINE fv timesPowerOfTwo(fv p, fv shifted, float scaleOfOne) {
    iv exponent = ((iv)shifted - (iv)splat(EXP_SHIFTER)) << 23;
    return p * (fv)(exponent + (iv)splat(scaleOfOne));
}

/// 2^y for y in [-127, 1], without clamps (callers bound y): y = n + r with |r| <= 1/2.
INLINE fv exp2Bounded(fv y, float scaleOfOne) {
    fv shifted = y + splat(EXP_SHIFTER);
    fv r = y - (shifted - splat(EXP_SHIFTER));  // exact
    return timesPowerOfTwo(exp2Fraction(r), shifted, scaleOfOne);
}

#define PHI_TAIL 5.5507884f          // 3.925 √2: beyond, Φ(-t) < 1.4e-8 is taken as 0
#define HALF_LOG2_E 0.7213475204444817f  // t²/2 in log2 units
#define LOG2_SQRT_2PI 1.3257480647361592f

/// The standard normal CDF Φ(x) over the whole line in one form, without erf's two branches:
/// Φ(-t) = 0.5 · 2^(L(t) - t² log2(e)/2) for t = |x| ≤ PHI_TAIL, where L(t) ≈ log2(2Φ(-t)) +
/// t² log2(e)/2 (smooth, |L| < 4, L(0) = 0; degree 12 in t, fitted by scripts/fit-erf.py to 2e-9), and
/// Φ(x) = 1 - Φ(-x) for x > 0. No 1 + erf cancellation: Φ(-t) keeps its relative accuracy in the
/// tail; absolute error < 3e-8 everywhere (ElementwiseKernelTests). NaN stays NaN.
INLINE fv phiVector(fv x) {
    const iv signBit = (iv)splat(-0.f);
    fv t = (fv)((iv)x & ~signBit);
    fv clamped = vmin(splat(PHI_TAIL), t);  // this operand order keeps NaN
    fv l = splat(-2.7315994296750425e-10f);
    l = l * clamped + splat(1.1774229319102729e-08f);
    l = l * clamped + splat(-2.308768048942459e-07f);
    l = l * clamped + splat(2.7174667122280392e-06f);
    l = l * clamped + splat(-2.1182685687875228e-05f);
    l = l * clamped + splat(0.00011144485319721456f);
    l = l * clamped + splat(-0.00035476777137036176f);
    l = l * clamped + splat(9.878155125046968e-05f);
    l = l * clamped + splat(0.0068714156060672715f);
    l = l * clamped + splat(-0.0524109593337856f);
    l = l * clamped + splat(0.2621214392234036f);
    l = l * clamped + splat(-1.151103946446122f);
    l = l * clamped + splat(-1.9469137413352655e-09f);
    fv lower = exp2Bounded(l - clamped * clamped * splat(HALF_LOG2_E), 0.5f);  // Φ(-t)
    lower = (fv)((iv)lower & ~(t > splat(PHI_TAIL)));
    return select(x < splat(0.f), lower, splat(1.f) - lower);
}

/// The standard normal density φ(x) = 2^(-x² log2(e)/2 - log2 √(2π)), with |x| clamped at 13 (where
/// φ < 1e-37) so the exponent stays in range; returned with `x`'s sign (x φ(x) = sign · t φ(t)) as
/// t · φ(t) for the derivative.
INLINE fv xTimesPdf(fv x) {
    const iv signBit = (iv)splat(-0.f);
    fv t = vmin(splat(13.f), (fv)((iv)x & ~signBit));
    fv tPdf = t * exp2Bounded(splat(-LOG2_SQRT_2PI) - t * t * splat(HALF_LOG2_E), 1.f);
    return (fv)((iv)tPdf | ((iv)x & signBit));
}

/// Φ(x) and Φ(x) + x φ(x) (GELU's derivative).
INLINE void geluParts(fv x, fv *cdf, fv *derivative) {
    *cdf = phiVector(x);
    *derivative = *cdf + xTimesPdf(x);
}
#endif
