"""The Hub model card (README.md) of an exported adapter: metadata the Hub indexes, then the story.

The YAML header is built with ``huggingface_hub.ModelCardData`` and ``EvalResult`` so the Hub (and
``ModelCard.load``) reads the base model, ``base_model_relation: adapter``, the library, tags,
datasets, licence and a ``model-index`` holding the run's eval numbers. The body says how the adapter
was trained (algorithm, data, rewards), shows every evaluated stage (base → SFT → final) with 95%
CIs and the paired gains, embeds the gains plot, and shows how to load it with peft and vLLM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlmath.config import Config

# eval.json "dataset" -> (Hub dataset id or a descriptive type, split evaluated)
_EVAL_DATASETS = {
    "gsm8k": ("openai/gsm8k", "test"),
    "math": ("EleutherAI/hendrycks_math", "test"),
    "math500": ("HuggingFaceH4/MATH-500", "test"),
}


@dataclass(frozen=True)
class BaseModelInfo:
    """Which Hub model the adapter applies to, and what the card should say about its weights."""

    hub_id: str | None  # None: no Hub model (the tiny random test model, a local folder)
    name_or_path: str  # what the run's config named
    note: str  # one paragraph for the card


@dataclass(frozen=True)
class CardInputs:
    """Everything the card is made from; ``report`` is an eval.json v1 dict (or None)."""

    config: Config
    base: BaseModelInfo
    report: dict[str, Any] | None
    run_name: str
    mlflow_run_id: str | None
    repo_id: str  # where the card will live (Hub repo id or the export folder's name)
    plot: str | None  # file name of the gains plot inside the export folder
    merged: bool


def build_card(inputs: CardInputs):
    """The card as a ``huggingface_hub.ModelCard`` (``.save(path)`` writes README.md)."""
    from huggingface_hub import ModelCard

    data = card_data(inputs)
    body = "\n\n".join(part for part in (_summary(inputs), _training(inputs.config), _rewards(inputs.config),
                                         _results(inputs.report, inputs.plot), _usage(inputs)) if part)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}\n")


def card_data(inputs: CardInputs):
    """YAML metadata: base model, relation, library, tags, datasets, licence, model-index."""
    from huggingface_hub import ModelCardData

    config = inputs.config
    tags = ["rlmath", config.algorithm, "lora", "peft", "math", "reasoning"]
    if config.sft.warm_start:
        tags.append("sft")
    if inputs.base.hub_id is None:
        tags.append("test-model")
    datasets = [config.data.path] if config.data.source == "dataset" and _is_hub_id(config.data.path) else None
    return ModelCardData(
        base_model=inputs.base.hub_id, base_model_relation="adapter" if inputs.base.hub_id else None,
        library_name="peft", pipeline_tag="text-generation", tags=tags, datasets=datasets, license="apache-2.0",
        model_name=inputs.repo_id.split("/")[-1], eval_results=eval_results(inputs.report) or None)


def eval_results(report: dict[str, Any] | None) -> list:
    """model-index entries: the final stage's accuracy and pass@k on the eval set (the model's own numbers)."""
    from huggingface_hub import EvalResult

    if not report or not report.get("stages"):
        return []
    final = report["stages"][-1]
    dataset_type, split = eval_dataset(report)
    common = {"task_type": "text-generation", "task_name": "Math word problems", "dataset_type": dataset_type,
              "dataset_name": _dataset_title(report), "dataset_split": split}
    results = [EvalResult(metric_type="accuracy", metric_name="accuracy (greedy)", metric_value=final["accuracy"],
                          **common)]
    for name, value in sorted((final.get("pass@k") or {}).items()):
        if name != "pass@1" and value is not None:
            results.append(EvalResult(metric_type=name, metric_name=name, metric_value=value, **common))
    return results


def eval_dataset(report: dict[str, Any]) -> tuple[str, str]:
    """(dataset type, split) for the model-index: a Hub id where one exists, else ``rlmath-synth``.

    >>> eval_dataset({"dataset": "gsm8k"})
    ('openai/gsm8k', 'test')
    >>> eval_dataset({"dataset": "config:synth"})
    ('rlmath-synth', 'held-out')
    """
    name = str(report.get("dataset", ""))
    if name in _EVAL_DATASETS:
        return _EVAL_DATASETS[name]
    if name.startswith("config:"):
        return f"rlmath-{name.split(':', 1)[1]}", "held-out"
    return name or "unknown", "test"


def _dataset_title(report: dict[str, Any]) -> str:
    name = str(report.get("dataset", ""))
    if name == "config:synth":
        return "rlmath synthetic math (held-out seed)"
    return name


def _is_hub_id(value: str | None) -> bool:
    return bool(value) and value.count("/") == 1 and not value.startswith((".", "/", "~"))


def _summary(inputs: CardInputs) -> str:
    config = inputs.config
    base = f"[{inputs.base.hub_id}](https://huggingface.co/{inputs.base.hub_id})" if inputs.base.hub_id \
        else f"`{inputs.base.name_or_path}`"
    lines = [f"# {inputs.repo_id.split('/')[-1]}",
             (f"A LoRA adapter for {base}, trained by rlmath with **{config.algorithm.upper()}**"
              f"{' after an SFT warm start' if config.sft.warm_start else ''} on math problems whose answers are "
              "checked by a symbolic verifier."),
             f"**Base model.** {inputs.base.note}",
             f"Run `{inputs.run_name}`" + (f", mlflow run id `{inputs.mlflow_run_id}`." if inputs.mlflow_run_id else ".")]
    if inputs.merged:
        lines.append("The folder `merged/` holds the adapter merged into the base weights: a plain transformers "
                     "model that loads without peft.")
    return "\n\n".join(lines)


def _training(config: Config) -> str:
    data = config.data
    if data.source == "synth":
        source = (f"rlmath synthetic problems, families {', '.join(data.families)}, difficulty {data.difficulty}"
                  f"{f'–{data.max_difficulty}' if data.max_difficulty else ''}, {data.train_size} training items "
                  f"(seed {data.train_seed}), {data.eval_size} held-out items (seed {data.eval_seed})")
    else:
        source = f"`{data.path}` split `{data.split}` (fields `{data.question_field}` / `{data.answer_field}`)"
    rows = [("algorithm", config.algorithm), ("data", source),
            ("LoRA", (f"r={config.lora.r}, alpha={config.lora.alpha}, dropout={config.lora.dropout}, "
                      f"targets {', '.join(config.lora.target_modules)}")),
            ("seed", str(config.seed))]
    if config.algorithm == "grpo":
        g, s = config.grpo, config.sampling
        rows += [("GRPO", (f"{g.steps} steps × {g.prompts_per_step} prompts × {s.num_generations} samples, "
                           f"lr {g.learning_rate}, loss {g.loss_type}, clip ε {g.epsilon}, β {g.beta}")),
                 ("sampling", f"T={s.temperature}, top_p={s.top_p}, max {s.max_tokens} tokens ({s.backend})")]
    if config.algorithm == "sft" or config.sft.warm_start:
        f = config.sft
        rows.append(("SFT", f"{f.epochs} epoch(s), lr {f.learning_rate}, batch {f.batch_size}"))
    table = "\n".join(f"| {key} | {value} |" for key, value in rows)
    return ("## Training details\n\n| | |\n|---|---|\n" + table +
            "\n\nThe resolved training config is `config.yaml` in this repository: "
            "`rlmath train -c config.yaml` reproduces the run.")


def _rewards(config: Config) -> str:
    rows = "\n".join(f"| `{name}` | {weight} |" for name, weight in config.rewards.weights.items())
    return ("## Reward configuration\n\n| reward | weight |\n|---|---|\n" + rows +
            f"\n\nAnswers are verified symbolically in worker processes with a {config.rewards.timeout:g} s "
            "hard timeout; a timeout counts as wrong.")


def _results(report: dict[str, Any] | None, plot: str | None) -> str:
    if not report or not report.get("stages"):
        return "## Results\n\nThe run has no eval.json: no evaluation to report."
    lines = [(f"## Results\n\nHeld-out set: `{report.get('dataset')}`, {report.get('items')} items, greedy "
              "decoding; 95% bootstrap confidence intervals.\n"),
             "| stage | adapter | accuracy | 95% CI | n |", "|---|---|---|---|---|"]
    for stage in report["stages"]:
        lines.append(f"| {stage['name']} | {stage.get('adapter') or '—'} | {stage['accuracy']:.3f} | "
                     f"[{stage['ci_low']:.3f}, {stage['ci_high']:.3f}] | {stage['total']} |")
    comparisons = report.get("comparisons") or []
    if comparisons:
        lines += ["", "Paired differences on the same items:", "",
                  "| from → to | group | n | from | to | gain | 95% CI |", "|---|---|---|---|---|---|---|"]
        for comp in comparisons:
            for group, g in (comp.get("groups") or {}).items():
                lines.append(f"| {comp['from']} → {comp['to']} | {group} | {g['n']} | {g['from']:.3f} | {g['to']:.3f} "
                             f"| {g['gain']:+.3f} | [{g['gain_ci_low']:+.3f}, {g['gain_ci_high']:+.3f}] |")
    if plot:
        lines += ["", f"![Accuracy per family at every stage, with 95% CIs]({plot})"]
    return "\n".join(lines)


def _usage(inputs: CardInputs) -> str:
    base = inputs.base.hub_id or "PATH/TO/BASE"
    repo = inputs.repo_id
    return f"""## How to use

With transformers + peft:

```python
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

base = AutoModelForCausalLM.from_pretrained("{base}")
model = PeftModel.from_pretrained(base, "{repo}")
tokenizer = AutoTokenizer.from_pretrained("{repo}")
```

With vLLM (the adapter is served on top of the base, no merge):

```python
from huggingface_hub import snapshot_download
from vllm import LLM, SamplingParams
from vllm.lora.request import LoRARequest

llm = LLM(model="{base}", enable_lora=True, max_lora_rank={inputs.config.lora.r})
adapter = snapshot_download("{repo}")
outputs = llm.chat([{{"role": "user", "content": "What is 12 * 7? Put the final answer in \\\\boxed{{}}."}}],
                   SamplingParams(temperature=0.0, max_tokens=256), lora_request=LoRARequest("rlmath", 1, adapter))
```"""
