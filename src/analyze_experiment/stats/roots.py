"""Brent's root finder, step for step as ``scipy.optimize.brentq`` takes it.

Two numbers in every report are roots: the minimum detectable difference (power(d) = 0.8,
stats/power.py) and the exact binomial (Clopper–Pearson) interval behind the McNemar interval
(stats/paired.py, as ``scipy.stats.binomtest`` finds it). ``scipy.optimize`` costs 0.4 s of
CPU to import for this one function. The method is the van Wijngaarden–Dekker–Brent one
(Brent 1973, ch. 4): keep a bracket [cur, blk] with f changing sign, try inverse
interpolation — linear from two points, or the three-point extrapolation scipy's C version
uses — and fall back to bisection whenever the step would not shrink the bracket fast
enough. Doing the same float operations in the same order gives the same iterates, so the
same root to the last bit (tests/test_roots.py compares it with scipy on a few hundred
functions, and the golden report is unchanged).
"""

from __future__ import annotations

import math
from collections.abc import Callable

XTOL = 2e-12
"""scipy's default absolute tolerance."""
RTOL = 4 * 2.220446049250313e-16
"""scipy's default (and smallest allowed) relative tolerance: four machine epsilons."""
MAXITER = 100


def _value(f: Callable[[float], float], x: float) -> float:
    fx = float(f(x))
    if math.isnan(fx):
        raise ValueError(f"the function is NaN at {x!r}")
    return fx


def brent_root(f: Callable[[float], float], a: float, b: float, *, xtol: float = XTOL, rtol: float = RTOL,
               maxiter: int = MAXITER) -> float:
    """A root of ``f`` in [a, b] (f(a) and f(b) of opposite signs), to within
    ``xtol + rtol·|root|``; the value ``scipy.optimize.brentq(f, a, b, xtol, rtol, maxiter)``
    returns. Raises ValueError when f(a) and f(b) have the same sign or f is NaN, and
    RuntimeError after ``maxiter`` steps, as brentq does."""
    if xtol <= 0:
        raise ValueError(f"xtol too small ({xtol:g} <= 0)")
    if rtol < RTOL:
        raise ValueError(f"rtol too small ({rtol:g} < {RTOL:g})")
    x_prev, x_cur = float(a), float(b)
    f_prev, f_cur = _value(f, x_prev), _value(f, x_cur)
    if f_prev * f_cur > 0:
        raise ValueError("f(a) and f(b) must have different signs")
    if f_prev == 0:
        return x_prev
    if f_cur == 0:
        return x_cur
    x_blk = f_blk = step_prev = step = 0.0
    for _ in range(maxiter):
        if f_prev * f_cur < 0:  # the sign change is between prev and cur: prev becomes the far end
            x_blk, f_blk = x_prev, f_prev
            step_prev = step = x_cur - x_prev
        if abs(f_blk) < abs(f_cur):  # keep the best estimate in cur
            x_prev, x_cur, x_blk = x_cur, x_blk, x_cur
            f_prev, f_cur, f_blk = f_cur, f_blk, f_cur
        delta = (xtol + rtol * abs(x_cur)) / 2
        half = (x_blk - x_cur) / 2
        if f_cur == 0 or abs(half) < delta:
            return x_cur
        if abs(step_prev) > delta and abs(f_cur) < abs(f_prev):
            if x_prev == x_blk:  # two distinct points: secant
                trial = -f_cur * (x_cur - x_prev) / (f_cur - f_prev)
            else:  # three: inverse quadratic extrapolation through the divided differences
                d_prev = (f_prev - f_cur) / (x_prev - x_cur)
                d_blk = (f_blk - f_cur) / (x_blk - x_cur)
                trial = -f_cur * (f_blk * d_blk - f_prev * d_prev) / (d_blk * d_prev * (f_blk - f_prev))
            bound = abs(step_prev) if abs(step_prev) < 3 * abs(half) - delta else 3 * abs(half) - delta
            if 2 * abs(trial) < bound:  # a short step that keeps shrinking the bracket
                step_prev, step = step, trial
            else:
                step_prev = step = half
        else:
            step_prev = step = half
        x_prev, f_prev = x_cur, f_cur
        x_cur += step if abs(step) > delta else (delta if half > 0 else -delta)
        f_cur = _value(f, x_cur)
    raise RuntimeError(f"Failed to converge after {maxiter} iterations, value is {x_cur}")
