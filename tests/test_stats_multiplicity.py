"""Holm and Benjamini–Hochberg against a direct step-down/step-up computation."""

import math

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from analyze_experiment.stats.multiplicity import benjamini_hochberg, holm


def _holm(p):
    m = len(p)
    order = np.argsort(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj


def _bh(p):
    m = len(p)
    order = np.argsort(p)[::-1]
    adj = np.empty(m)
    running = 1.0
    for k, i in enumerate(order):
        running = min(running, p[i] * m / (m - k))
        adj[i] = running
    return adj


def test_holm_and_bh_match_direct_computation():
    p = np.random.default_rng(0).uniform(0, 0.2, 17)
    assert holm(p) == pytest.approx(_holm(p), abs=1e-12)
    assert benjamini_hochberg(p) == pytest.approx(_bh(p), abs=1e-12)


def test_nan_p_values_are_not_counted():
    out = holm(np.array([0.01, math.nan, 0.04]))
    assert math.isnan(out[1])
    assert out[[0, 2]] == pytest.approx([0.02, 0.04])


@pytest.mark.parametrize("m", [1, 2, 5, 40])
def test_match_statsmodels_multipletests(m):
    p = np.random.default_rng(m).uniform(0, 0.1, m)
    p[0] = p[-1]  # a tie
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1], abs=1e-12)
    assert benjamini_hochberg(p) == pytest.approx(multipletests(p, method="fdr_bh")[1], abs=1e-12)
