#!/usr/bin/env python3
"""Fits the erf coefficients of Sources/CKernels/kernels-body.h (erfVector) and prints them.

|x| < 0.921875: erf(x) = x * P(x^2), P of degree 5, relative error minimised;
0.921875 <= |x| < 3.925: erf(x) = 1 - exp(R(|x| - 2.4234375) - x^2), R ~ log(erfc x) + x^2 of degree 8.
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
