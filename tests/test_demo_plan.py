"""Properties of the example's plan: exact planted counts, wrong answers that are really
wrong, reproducible words. Pure functions, so these run without inspect-ai."""

from __future__ import annotations

import string

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from analyze_experiment.demo.plan import (
    RUNS,
    WRONG_MIX,
    capitalize,
    completions,
    make_words,
    plant_correct,
    planted_count,
    wrong_answer,
)
from analyze_experiment.demo.training import render_capture

words_st = st.text(alphabet=string.ascii_lowercase, min_size=2, max_size=14)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(10, 400), seed=st.integers(0, 2**32 - 1))
def test_every_cell_gets_exactly_its_planted_count(n, seed):
    words = make_words(n, seed)
    correct = plant_correct(words, seed)
    assert set(correct) == {(r.name, e) for r in RUNS for e in r.epochs}
    for run in RUNS:
        for epoch, p in zip(run.epochs, run.planted, strict=True):
            assert correct[(run.name, epoch)].sum() == planted_count(p, n)


@given(word=words_st, kind=st.sampled_from(["typo", "lowercase", "verbose"]), seed=st.integers(0, 10**6))
def test_wrong_answers_are_wrong_for_match_and_contain_the_target_only_when_verbose(word, kind, seed):
    target = capitalize(word)
    out = wrong_answer(word, kind, np.random.default_rng(seed))
    assert out.strip() != target
    assert (target in out) == (kind == "verbose")


def test_planted_count_rounds_half_up():
    assert planted_count(0.555, 200) == 111
    assert planted_count(0.545, 200) == 109
    assert planted_count(0.21, 10) == 2
    assert planted_count(0.85, 10) == 9  # 8.5 -> 9


@settings(max_examples=25, deadline=None)
@given(n=st.integers(10, 300), seed=st.integers(0, 2**32 - 1))
def test_words_are_distinct_reproducible_and_4_to_9_letters(n, seed):
    words = make_words(n, seed)
    assert words == make_words(n, seed)
    assert len(set(words)) == n
    assert all(w.isascii() and w.isalpha() and w.islower() and 4 <= len(w) <= 9 for w in words)


def test_completions_are_the_target_exactly_where_planted_correct():
    words = make_words(120, 7)
    correct = plant_correct(words, 7)
    texts = completions(words, 7)
    for key, outs in texts.items():
        got = np.array([o == capitalize(w) for o, w in zip(outs, words, strict=True)])
        assert (got == correct[key]).all()
    assert completions(words, 7) == texts
    assert completions(words, 8) != texts


def test_control_mostly_chats_and_fine_tuned_runs_mostly_misspell():
    assert max(WRONG_MIX[True], key=WRONG_MIX[True].get) == "verbose"
    assert max(WRONG_MIX[False], key=WRONG_MIX[False].get) == "typo"
    for mix in WRONG_MIX.values():
        assert sum(mix.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("run", [r for r in RUNS if not r.is_control], ids=lambda r: r.vis_label)
def test_rendered_banner_reads_back_as_the_design_values(run):
    cap = render_capture(run.capture, lora_rank=run.lora_rank, lr=run.lr, output_dir="/x/ck-out-r")
    text = cap.slurm.decode()
    banner = text.split("resolved config:\n\n", 1)[1].split("\n\n", 1)[0]
    conf = yaml.safe_load(banner)
    assert conf["model"]["lora_rank"] == run.lora_rank
    assert conf["optimizer"]["lr"] == run.lr
    assert conf["output_dir"] == "/x/ck-out-r"
    assert conf["metric_logger"]["log_dir"] == "/x/ck-out-r/logs"
    assert f"Writing logs to /x/ck-out-r/logs/{cap.disklogger_name}" in text
