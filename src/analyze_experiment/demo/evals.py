"""Real inspect-ai evaluation logs for the bundled example, made offline in seconds.

inspect-ai runs the capitalization task once with its ``mockllm/model`` provider, which
answers every sample with a unique placeholder. Each (run, epoch) cell's log is that log
with the placeholders replaced by the cell's planted answers, the cell's model, task
name, task arguments and metadata set as the cluster workflow of its era writes them, and
then re-scored by inspect-ai's own ``score()`` (so scores, metrics and reductions are
computed by inspect-ai's scorers, not by us) and written with ``write_eval_log``.
Running ``eval()`` once per cell would take ~2 s each; this keeps a whole build near 8 s.
"""

from __future__ import annotations

import functools
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from inspect_ai import Task, score, task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import Sample
from inspect_ai.log import EvalLog, EvalSample, read_eval_log, write_eval_log
from inspect_ai.model import ChatMessage, GenerateConfig, ModelOutput, ModelUsage, get_model
from inspect_ai.scorer import Scorer, includes, match
from inspect_ai.solver import chain, generate, system_message
from inspect_ai.tool import ToolChoice, ToolInfo

from analyze_experiment.demo.plan import PROMPT, SYSTEM_PROMPT, TASK, capitalize

MOCK_MODEL = "mockllm/model"
_PLACEHOLDER = "@@demo-output-{id}@@"
_ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


@dataclass(frozen=True)
class _Template:
    """One real log, split so that each cell starts from a fresh copy cheaply."""

    header_json: str
    sample_jsons: tuple[str, ...]
    targets: tuple[str, ...]


@dataclass
class CellLog:
    """How one cell's log should look: who was evaluated, as which era's workflow says."""

    task_name: str
    model: str
    model_args: dict[str, Any]
    task_args: dict[str, Any]
    metadata: dict[str, Any] | None
    file_stem: str = "{created}_{task}_{id}"
    """File name without ``.eval``: ``{created}``, ``{task}``, ``{id}`` are filled in the
    way inspect-ai names its logs (``_``, ``:``, ``+`` and ``/`` become ``-``)."""
    dataset_name: str | None = None
    dataset_location: str | None = None
    task_file: str | None = None


def demo_scorers() -> list[Scorer]:
    """The scorers of the cluster's capitalization task: exact match, then includes."""
    return [match(location="exact", ignore_case=False), includes(ignore_case=False)]


@task
def capitalization(
    data_path: str,
    config_path: str = "",
    split: str = "test",
    temperature: float = 1e-7,
    max_tokens: int = 20,
    vis_label: str = "",
    use_chat_template: bool = True,
) -> Task:
    """Capitalise a word, with the signature and solver chain of the cluster's task.

    Reads ``{"test": [{"input": word, "output": Word, "word_length": n}, ...]}`` from
    ``data_path``. Sample ids are the 1-based positions (what inspect-ai assigns to a
    dataset without ids), made explicit so they are stable.
    """
    records = json.loads(Path(data_path).read_text(encoding="utf-8"))[split]
    samples = [
        Sample(
            id=i,
            input=PROMPT.format(input=r["input"]),
            target=r["output"],
            metadata={"word_length": r["word_length"]},
        )
        for i, r in enumerate(records, start=1)
    ]
    steps = [generate(temperature=temperature, max_tokens=max_tokens)]
    if use_chat_template:
        steps.insert(0, system_message(SYSTEM_PROMPT))
    return Task(
        name=f"{TASK}_{vis_label}" if vis_label else TASK,
        dataset=samples,
        solver=chain(*steps),
        scorer=demo_scorers(),
    )


def _placeholder_model(prompts: dict[str, int]) -> Any:
    """mockllm outputs: each sample's unique placeholder, with explicit token usage.

    The explicit ``ModelUsage`` matters: without it mockllm counts tokens with a
    tokenizer it downloads, which fails offline.
    """

    def respond(
        input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice, config: GenerateConfig
    ) -> ModelOutput:
        sample_id = prompts[input[-1].text]
        out = ModelOutput.from_content(model="model", content=_PLACEHOLDER.format(id=sample_id))
        out.usage = ModelUsage(input_tokens=24, output_tokens=4, total_tokens=28)
        return out

    return get_model(MOCK_MODEL, custom_outputs=respond, memoize=False)


@functools.lru_cache(maxsize=4)
def _template(words: tuple[str, ...]) -> _Template:
    """Run the task once with mockllm and keep its log (cached: builds reuse it)."""
    with tempfile.TemporaryDirectory(prefix="ae-demo-eval-") as tmp:
        data = Path(tmp) / "words.json"
        records = [{"input": w, "output": capitalize(w), "word_length": len(w)} for w in words]
        data.write_text(json.dumps({"test": records}), encoding="utf-8")
        prompts = {PROMPT.format(input=w): i for i, w in enumerate(words, start=1)}
        logs = inspect_eval(
            capitalization(data_path=str(data)),
            model=_placeholder_model(prompts),
            log_dir=str(Path(tmp) / "logs"),
            log_format="eval",
            display="none",
            log_realtime=False,
            score_display=False,
            max_samples=len(words),
        )
        if len(logs) != 1 or logs[0].status != "success":
            raise RuntimeError(f"the example's template evaluation did not succeed: {logs[0].error}")
        log = read_eval_log(logs[0].location)
    samples = log.samples or []
    log.samples = None
    return _Template(
        header_json=log.model_dump_json(),
        sample_jsons=tuple(s.model_dump_json() for s in samples),
        targets=tuple(str(s.target) for s in samples),
    )


def _short_id(rng: np.random.Generator) -> str:
    """A 22-character id in inspect-ai's alphabet (seeded, so builds are reproducible)."""
    return "".join(_ID_ALPHABET[i] for i in rng.integers(len(_ID_ALPHABET), size=22))


def _clean(component: str) -> str:
    """inspect-ai's file-name component rule."""
    return re.sub(r"[_/:+]", "-", component)


def write_cell_log(
    words: tuple[str, ...], outputs: list[str], cell: CellLog, log_dir: Path, rng: np.random.Generator
) -> Path:
    """Write one cell's ``.eval`` file into ``log_dir`` and return its path."""
    tmpl = _template(words)
    if len(outputs) != len(tmpl.sample_jsons):
        raise ValueError(f"{len(outputs)} outputs for {len(tmpl.sample_jsons)} samples")
    model_json = json.dumps(cell.model)[1:-1]
    samples = []
    for i, (js, text) in enumerate(zip(tmpl.sample_jsons, outputs, strict=True), start=1):
        js = js.replace(_PLACEHOLDER.format(id=i), json.dumps(text)[1:-1])
        js = js.replace(f'"{MOCK_MODEL}"', f'"{model_json}"')
        sample = EvalSample.model_validate_json(js)
        sample.uuid = _short_id(rng)
        samples.append(sample)

    log = EvalLog.model_validate_json(tmpl.header_json)
    log.samples = samples
    # Score with inspect-ai while the header still names the mock model (score() rebuilds
    # the model from the header; hf/... would need transformers and weights).
    log = score(log, demo_scorers(), action="overwrite", display="none", copy=False)

    ev = log.eval
    ev.eval_id, ev.run_id, ev.task_id = _short_id(rng), _short_id(rng), _short_id(rng)
    ev.task = cell.task_name
    # The cluster ran the task from its script file, not from this package, and not from
    # a git checkout that the builder's working directory happens to be in.
    ev.task_registry_name = TASK
    ev.task_file = cell.task_file
    ev.revision = None
    ev.packages = {k: v for k, v in ev.packages.items() if k == "inspect_ai"}
    ev.task_display_name = cell.task_name
    ev.task_args = dict(cell.task_args)
    ev.task_args_passed = {k: v for k, v in cell.task_args.items() if k != "split"}
    ev.model = cell.model
    ev.model_args = dict(cell.model_args)
    ev.metadata = dict(cell.metadata) if cell.metadata is not None else None
    ev.dataset.name = cell.dataset_name
    ev.dataset.location = cell.dataset_location
    if len(log.stats.model_usage) == 1:  # the one model the task used, renamed
        log.stats.model_usage = dict(zip([cell.model], log.stats.model_usage.values(), strict=True))
    if log.stats.connection_limit_history:
        log.stats.connection_limit_history = [
            c.model_copy(update={"model": cell.model}) for c in log.stats.connection_limit_history
        ]

    stem = (
        cell.file_stem.replace("{created}", _clean(ev.created))
        .replace("{task}", _clean(cell.task_name))
        .replace("{id}", ev.task_id)
    )
    path = log_dir / f"{stem}.eval"
    log_dir.mkdir(parents=True, exist_ok=True)
    write_eval_log(log, str(path))
    return path
