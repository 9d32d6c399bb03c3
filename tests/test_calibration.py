"""The report-level null simulation (``make calibrate``), reduced: sweeps where nothing
differs make a significant difference-type claim in at most α of reports (± Monte Carlo
error); a planted +10 pp configuration effect with 3 seeds is found in some of them."""

import numpy as np
import pytest
from bench.calibrate import ALPHA, NULL_SCENARIOS, _config_found, run_scenario, seeds
from scipy import stats

SWEEPS = 40


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NULL_SCENARIOS))
def test_null_sweeps_rarely_claim_anything(name):
    t = run_scenario(NULL_SCENARIOS[name], SWEEPS, seed=7)
    hits = t.config_claim if "grid with run-to-run" in name else t.any_claim
    # not more than α beyond what 40 sweeps can tell apart (one-sided binomial test at 1%)
    assert stats.binomtest(hits, SWEEPS, ALPHA, alternative="greater").pvalue > 0.01, (name, hits)
    assert t.config_claim <= hits or "grid with run-to-run" in name


@pytest.mark.slow
def test_planted_configuration_effect_is_found_at_the_seed_level():
    t = run_scenario(lambda rng: seeds(rng, rank_gain=0.10), 20, seed=3,
                     better=lambda a: _config_found(a, "lora_rank=32"))
    assert t.correct_winner >= 3  # 3 seeds per config: modest power, but not none
    assert np.isfinite(t.rate(t.correct_winner)[0])
