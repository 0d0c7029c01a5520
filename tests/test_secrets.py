"""Issue 14, secrets: with fake tokens in the environment (and one pasted into a config value), a real
train → eval → export leaves no trace of any of them in anything written: run folder, mlflow store and
artifacts, eval output, export folder, and the commands' stdout/stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECRETS = {"HF_TOKEN": "hf_e2eFakeHubToken0001", "MLFLOW_TRACKING_TOKEN": "mlflow-e2e-fake-token-0002",
           "MLFLOW_TRACKING_PASSWORD": "e2e-fake-password-0003", "ACME_API_KEY": "sk-e2e-fake-key-0004"}

pytestmark = pytest.mark.slow  # three CLI processes, one a (seconds-long) training run


def rlmath(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "rlmath.cli", *args], capture_output=True, text=True, cwd=ROOT, check=False,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_no_secret_in_anything_train_eval_and_export_write(tmp_path: Path) -> None:
    env = {**os.environ, **SECRETS, "PYTHONPATH": str(ROOT), "HF_HOME": str(tmp_path / "hf_home")}
    env.pop("MLFLOW_TRACKING_URI", None)
    runs = tmp_path / "runs"
    common = ["-c", "configs/smoke.yaml", "--set", f"output_dir={runs}", "--set", "sampling.backend=hf"]
    outputs = [rlmath("train", *common, "--set", "run_name=secret-run", "--set", "grpo.steps=1",
                      "--set", f"model.system_prompt=You are careful. Key {SECRETS['ACME_API_KEY']}", env=env)]
    outputs.append(rlmath("eval", *common, "--adapter", str(runs / "secret-run"), "--limit", "4",
                          "--out", str(tmp_path / "eval_out.json"), env=env))
    outputs.append(rlmath("export", "models:/rlmath-adapter/1", "--out", str(tmp_path / "export"), "--merge",
                          *common, env=env))

    assert (tmp_path / "export" / "adapter_model.safetensors").is_file()
    assert (runs / "secret-run" / "config.yaml").read_text().count("Key ***") == 1  # the pasted key, masked
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 30 and any(p.name == "mlflow.db" for p in files)
    leaks = [(str(p.relative_to(tmp_path)), name) for p in files for name, value in SECRETS.items()
             if value.encode() in p.read_bytes()]
    leaks += [(f"output of command {i}", name) for i, out in enumerate(outputs) for name, value in SECRETS.items()
              if value in out.stdout + out.stderr]
    assert leaks == []
