"""DPO on the tiny model: it trains against the adapter it starts from, and it learns its pairs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlmath.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def preference_accuracy(policy, rows) -> float:
    """Fraction of pairs where the policy gives the chosen side a higher log-prob than the rejected side."""
    from rlmath.policy import sequence_logprobs

    pad = policy.tokenizer.pad_token_id
    with torch.no_grad():
        chosen = sequence_logprobs(policy.model, [r["prompt_ids"] for r in rows], [r["chosen_ids"] for r in rows], pad)
        rejected = sequence_logprobs(policy.model, [r["prompt_ids"] for r in rows], [r["rejected_ids"] for r in rows], pad)
    return sum(float(c.sum() > r.sum()) for c, r in zip(chosen, rejected)) / len(rows)


def _started_policy_and_pairs(config):
    """A tiny policy whose starting adapter is not the base (the reference must follow it), and 8 toy pairs."""
    from rlmath.models import resolve_model
    from rlmath.policy import load_policy

    torch.manual_seed(0)
    policy = load_policy(config, resolve_model(config.model.name_or_path))
    with torch.no_grad():
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    generator = torch.Generator().manual_seed(1)
    rows = [{"prompt": "p", "chosen": "c", "rejected": "r", "prompt_ids": torch.randint(5, 200, (6,), generator=generator).tolist(),
             "chosen_ids": torch.randint(5, 200, (3,), generator=generator).tolist(),
             "rejected_ids": torch.randint(5, 200, (3,), generator=generator).tolist()} for _ in range(8)]
    return policy, rows


def test_an_sft_term_keeps_the_chosen_likelihood_up(tmp_path: Path) -> None:
    """``dpo.loss_type: [sigmoid, sft]`` (RPO): the chosen completions end more likely than with plain DPO."""
    from datasets import Dataset

    from rlmath.algorithms.dpo import train_dpo
    from rlmath.policy import sequence_logprobs

    chosen = {}
    for terms in (["sigmoid"], ["sigmoid", "sft"]):
        config = load_config(ROOT / "configs/dpo_smoke.yaml", ["dpo.max_steps=12", "dpo.batch_size=8",
                                                               f"dpo.loss_type=[{', '.join(terms)}]"])
        policy, rows = _started_policy_and_pairs(config)
        train_dpo(policy, Dataset.from_list(rows), config, lambda m, step: None)
        with torch.no_grad():
            scores = sequence_logprobs(policy.model, [r["prompt_ids"] for r in rows], [r["chosen_ids"] for r in rows],
                                       policy.tokenizer.pad_token_id)
        chosen[len(terms)] = sum(float(row.sum()) for row in scores)
    assert chosen[2] > chosen[1] + 0.5


def test_dpo_loss_weights_must_match_its_terms() -> None:
    from rlmath.config import ConfigError

    with pytest.raises(ConfigError, match="dpo: .*loss_weights has 1 values for 2 loss_type terms"):
        load_config(ROOT / "configs/dpo_smoke.yaml", ["dpo.loss_type=[sigmoid, sft]", "dpo.loss_weights=[1.0]"])


def test_dpo_uses_the_starting_adapter_as_reference_and_learns_its_pairs(tmp_path: Path) -> None:
    from datasets import Dataset

    from rlmath.algorithms.dpo import train_dpo
    from rlmath.models import resolve_model
    from rlmath.policy import load_policy, lora_state, save_adapter, sequence_logprobs

    config = load_config(ROOT / "configs/dpo_smoke.yaml", ["dpo.max_steps=12", "dpo.batch_size=8", "dpo.beta=0.5"])
    base = resolve_model(config.model.name_or_path)
    policy, rows = _started_policy_and_pairs(config)
    start, accuracy_before = lora_state(policy.model), preference_accuracy(policy, rows)
    logged: list[tuple[dict, int]] = []
    metrics = train_dpo(policy, Dataset.from_list(rows), config, lambda m, step: logged.append((m, step)))

    first = next(m for m, _ in logged if "dpo/rewards/chosen" in m)
    # Step 1 is scored before its update: policy == reference only if the reference is the starting adapter.
    assert abs(first["dpo/rewards/chosen"]) < 1e-5 and abs(first["dpo/rewards/rejected"]) < 1e-5
    last = [m for m, _ in logged if "dpo/rewards/accuracies" in m][-1]
    assert last["dpo/rewards/margins"] > 0 and last["dpo/rewards/accuracies"] > 0.5
    assert metrics["dpo/steps"] == 12
    after = lora_state(policy.model)
    assert set(after) == set(start)  # the frozen reference copy is gone
    assert any(not torch.equal(start[k], after[k]) for k in start)
    accuracy_after = preference_accuracy(policy, rows)
    assert accuracy_after > accuracy_before and accuracy_after >= 0.75
    # Saved files are the trained adapter, and the live model carries no trainer patch: a reload agrees.
    saved = save_adapter(policy.model, tmp_path / "adapter")
    assert not (saved / "ref").exists()
    reloaded = load_policy(config, base, adapter=saved, trainable=False)
    pad = policy.tokenizer.pad_token_id
    with torch.no_grad():
        ours = sequence_logprobs(policy.model, [rows[0]["prompt_ids"]], [rows[0]["chosen_ids"]], pad)[0]
        theirs = sequence_logprobs(reloaded.model, [rows[0]["prompt_ids"]], [rows[0]["chosen_ids"]], pad)[0]
    assert torch.allclose(ours, theirs, atol=1e-5)


@pytest.mark.slow
def test_dpo_smoke_config_runs_end_to_end(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "rlmath.cli", "train", "-c", "configs/dpo_smoke.yaml", "--set", f"output_dir={tmp_path}",
            "--set", "run_name=dpo"]
    result = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "dpo"
    pairs = [json.loads(line) for line in (run_dir / "pairs" / "pairs.jsonl").read_text().splitlines()]
    assert pairs and all(p["chosen_ids"] != p["rejected_ids"] and p["source"] == "solutions" for p in pairs)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("dpo/rewards/accuracies" in r for r in rows) and any("eval/final/accuracy" in r for r in rows)
    assert (run_dir / "eval.json").is_file() and (run_dir / "adapter" / "adapter_config.json").is_file()


def test_pts_with_no_question_in_band_fails_cleanly(tmp_path: Path) -> None:
    """The random tiny model never answers right: p = 0 everywhere, a clear error, exit 1, nothing written."""
    out = tmp_path / "pts"
    args = [sys.executable, "-m", "rlmath.cli", "pts", "-c", "configs/dpo_smoke.yaml", "--out", str(out),
            "--set", f"output_dir={tmp_path}", "--set", "tracking.mlflow=false"]
    result = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "no pivotal-token pairs in 4 questions (0 with" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
