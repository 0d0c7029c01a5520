"""The mlflow UI in a real headless Debian Chromium: experiment → run → the reasoning-gains plot.

Served by ``rlmath ui`` itself (a subprocess, URL read from what it prints) over a store the tiny
model just trained into. The screenshot lands in ``runs/mlflow_ui_gains.png`` for a human to check.
Chromium comes from Debian (``apt-get install -y chromium``; the Makefile's test target does it).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlmath.config import load_config

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="apt-get install -y chromium")]


def start_ui(runs: Path) -> tuple[subprocess.Popen, str]:
    """``rlmath ui`` on a free port; returns the process and the URL it printed."""
    from rlmath.ui import free_port

    process = subprocess.Popen([sys.executable, "-m", "rlmath.cli", "ui", "--set", f"output_dir={runs}",
                                "--port", str(free_port())], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 120
    seen = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        seen += line
        match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        if match:
            return process, match.group(1)
        if not line and process.poll() is not None:
            break
    os.killpg(process.pid, signal.SIGTERM)
    raise AssertionError(f"rlmath ui printed no URL:\n{seen}")


def test_mlflow_ui_shows_experiment_run_and_gains_plot(tmp_path: Path, monkeypatch) -> None:
    import rewards
    from playwright.sync_api import sync_playwright
    from rich.console import Console

    from rlmath.loop import run_training
    from tests.test_train import text_length_reward

    monkeypatch.setitem(rewards.REWARD_FUNCTIONS, "text_length", text_length_reward)
    runs = tmp_path / "runs"
    config = load_config(ROOT / "configs/smoke.yaml", [
        f"output_dir={runs}", "run_name=ui-smoke", "sampling.backend=hf", "grpo.steps=1",
        "rewards.weights={correct: 1.0, text_length: 1.0}"])
    run_training(config, Console(quiet=True))
    process, url = start_ui(runs)
    shot = ROOT / "runs" / "mlflow_ui_gains.png"
    shot.parent.mkdir(exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(url, wait_until="load")
            page.get_by_text("Model training", exact=True).first.click()  # mlflow 3 opens on GenAI pages
            page.get_by_text(config.tracking.experiment, exact=True).first.click()
            page.get_by_text("ui-smoke", exact=True).first.click()
            page.get_by_role("tab", name="Artifacts").first.click()
            page.get_by_text("reasoning_gains.png", exact=True).first.click()
            # The artifact viewer renders the PNG from a blob: URL once it has downloaded it.
            page.wait_for_function("Array.from(document.images).some("
                                   "i => i.src.startsWith('blob:') && i.complete && i.naturalWidth > 300)")
            page.screenshot(path=str(shot))
            browser.close()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    assert shot.stat().st_size > 20_000
