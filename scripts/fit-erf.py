#!/usr/bin/env python3
"""Fits the coefficients of Sources/CKernels/kernels-body.h (erfVector, phiVector, exp2Bounded) and prints them.

|x| < 0.921875: erf(x) = x * P(x^2), P of degree 5, relative error minimised;
0.921875 <= |x| < 3.925: erf(x) = 1 - exp(R(|x| - 2.4234375) - x^2), R ~ log(erfc x) + x^2 of degree 8.
GELU's normal CDF in one form: Phi(-t) = 0.5 * 2^(L(t) - t^2 log2(e) / 2) for 0 <= t <= 3.925 sqrt 2,
L(t) ~ log2(2 Phi(-t)) + t^2 log2(e) / 2 of degree 12 in t (fitted in the Chebyshev basis, then
expanded in powers of t: L(0) = 0, so Horner keeps its accuracy near t = 0, where GELU is near 0);
2^r on |r| <= 1/2 of degree 6 (relative).
Iteratively reweighted least squares on Chebyshev nodes approximates the minimax fit; the
references come from mpmath at 40 digits. Usage: .venv/bin/python scripts/fit-erf.py
"""
import mpmath
import numpy as np

mpmath.mp.dps = 40
SMALL_END, LARGE_END = 0.921875, 3.925
CENTRE = (SMALL_END + LARGE_END) / 2


def chebyshev_nodes(a, b, n):
    k = np.arange(n)
    return (a + b) / 2 + (b - a) / 2 * np.cos((2 * k + 1) * np.pi / (2 * n))


def near_minimax(t, target, degree, relative):
    weights = np.ones_like(t)
    for _ in range(30):
        basis = np.vander(t, degree + 1, increasing=True)
        scale = weights / (np.abs(target) if relative else 1)
        coefficients, *_ = np.linalg.lstsq(basis * scale[:, None], target * scale, rcond=None)
        error = basis @ coefficients - target
        if relative:
            error = error / target
        weights = weights * (1 + np.abs(error) / np.abs(error).max())
    return coefficients, np.abs(error).max()


x = np.abs(chebyshev_nodes(0, SMALL_END, 400)) + 1e-6
small, small_error = near_minimax(x * x, np.array([float(mpmath.erf(v) / v) for v in x]), 5, relative=True)
x = chebyshev_nodes(SMALL_END, LARGE_END, 600)
large, large_error = near_minimax(x - CENTRE, np.array([float(mpmath.log(mpmath.erfc(v)) + mpmath.mpf(v) ** 2) for v in x]), 8, relative=False)
print(f"small |x| < {SMALL_END}: erf(x)/x = P(x^2), max relative error {small_error:.2e}, coefficients (x^0 first):")
print("  " + ", ".join(repr(float(c)) for c in small))
print(f"large: log(erfc x) + x^2 = R(x - {CENTRE}), max absolute error {large_error:.2e}, coefficients (x^0 first):")
print("  " + ", ".join(repr(float(c)) for c in large))

from numpy.polynomial import chebyshev

PHI_TAIL = 3.925 * np.sqrt(2)
t = chebyshev_nodes(0, PHI_TAIL, 2000)
scaled = (t - PHI_TAIL / 2) / (PHI_TAIL / 2)
target = np.array([float(mpmath.log(2 * mpmath.ncdf(-v), 2) + mpmath.mpf(v) ** 2 / (2 * mpmath.log(2))) for v in t])
weights = np.ones_like(t)
for _ in range(30):
    series = chebyshev.chebfit(scaled, target, 12, w=weights)
    error = chebyshev.chebval(scaled, series) - target
    weights = weights * (1 + np.abs(error) / np.abs(error).max())
in_scaled = np.poly1d(chebyshev.cheb2poly(series)[::-1])
in_t = in_scaled(np.poly1d([2 / PHI_TAIL, -1.0])).coeffs[::-1]
print(f"phi: log2(2 Phi(-t)) + t^2 log2(e)/2 = L(t) on [0, {PHI_TAIL:.7f}], max absolute error {np.abs(error).max():.2e}, coefficients (t^0 first):")
print("  " + ", ".join(repr(float(c)) for c in in_t))
r = chebyshev_nodes(-0.5, 0.5, 400)
exp2, exp2_error = near_minimax(r, np.array([float(mpmath.mpf(2) ** v) for v in r]), 6, relative=True)
print(f"exp2: 2^r on |r| <= 1/2, max relative error {exp2_error:.2e}, coefficients (r^0 first):")
print("  " + ", ".join(repr(float(c)) for c in exp2))
