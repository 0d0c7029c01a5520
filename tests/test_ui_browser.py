"""The mlflow UI in a real headless Debian Chromium, as a new user meets it after a smoke run.

Served by ``rlmath ui`` itself (a subprocess, URL read from what it prints) over a store the tiny
model just trained into (SFT warm start, then GRPO). The printed URL must open on the model-training
view of the experiment (its runs, not GenAI traces); the "Models" page lists the SFT and final
adapters as logged models, the final one registered; the run page shows its dataset inputs; the
Artifacts tab renders the gains plot. Screenshots of each page are saved in the test's tmp folder,
whose path the test prints. Chromium comes from Debian (``make chromium``).
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

    process = subprocess.Popen([sys.executable, "-m", "rlmath.cli", "ui", "-c", "configs/smoke.yaml",
                                "--set", f"output_dir={runs}",
                                "--port", str(free_port())], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 120
    seen = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        seen += line
        match = re.search(r"(http://127\.0\.0\.1:\d+\S*)", line)
        if match:
            return process, match.group(1)
        if not line and process.poll() is not None:
            break
    os.killpg(process.pid, signal.SIGTERM)
    raise AssertionError(f"rlmath ui printed no URL:\n{seen}")


def test_mlflow_ui_shows_training_view_models_datasets_and_gains_plot(tmp_path: Path, monkeypatch, capsys) -> None:
    from playwright.sync_api import sync_playwright
    from rich.console import Console

    import rewards
    from rlmath.loop import run_training
    from tests.test_train import text_length_reward

    monkeypatch.setitem(rewards.REWARD_FUNCTIONS, "text_length", text_length_reward)
    runs = tmp_path / "runs"
    config = load_config(ROOT / "configs/smoke.yaml", [
        f"output_dir={runs}", "run_name=ui-smoke", "sampling.backend=hf", "grpo.steps=1",
        "sft.warm_start=true", "sft.max_steps=2", "rewards.weights={correct: 1.0, text_length: 1.0}"])
    run_training(config, Console(quiet=True))
    process, url = start_ui(runs)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)
            check_training_view(page, url, shots)
            check_logged_models(page, shots)
            check_run_page(page, shots)
            browser.close()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    with capsys.disabled():
        print(f"\nmlflow UI screenshots: {shots}")
    assert sorted(p.name for p in shots.iterdir()) == ["1_training_view.png", "2_logged_models.png",
                                                       "3_run_datasets.png", "4_gains_plot.png"]
    assert (shots / "4_gains_plot.png").stat().st_size > 20_000


def check_training_view(page, url: str, shots: Path) -> None:
    """The printed URL opens the experiment's runs table in the Model-training view, not GenAI's overview."""
    assert "workflowType=machine_learning" in url and "/experiments/" in url
    page.goto(url, wait_until="load")
    page.get_by_text("ui-smoke", exact=True).first.wait_for()
    page.get_by_role("link", name="Models").first.wait_for()  # the training view's side bar: Runs, Models
    body = page.inner_text("body")
    assert "Training runs" not in body and "Detect Issues" not in body and "Latency" not in body
    page.screenshot(path=str(shots / "1_training_view.png"))


def check_logged_models(page, shots: Path) -> None:
    """"Models" lists the SFT and final adapters as ready logged models; the final one is registered."""
    page.get_by_role("link", name="Models").first.click()
    page.get_by_text("final", exact=True).first.wait_for()
    page.get_by_text("rlmath-adapter", exact=False).first.wait_for()
    body = page.inner_text("body")
    assert "sft" in body.split() and body.count("Ready") >= 2
    page.screenshot(path=str(shots / "2_logged_models.png"))


def check_run_page(page, shots: Path) -> None:
    """The run shows its training and eval dataset inputs, and its Artifacts tab renders the gains plot."""
    page.get_by_role("link", name="Runs").first.click()
    page.get_by_text("ui-smoke", exact=True).first.click()
    page.get_by_text("Datasets", exact=True).first.wait_for()
    datasets = page.get_by_text(re.compile(r"^train \([0-9a-f]{8}\)$")).first
    datasets.wait_for()
    page.screenshot(path=str(shots / "3_run_datasets.png"))
    page.get_by_role("tab", name="Artifacts").first.click()
    page.get_by_text("reasoning_gains.png", exact=True).first.click()
    # The artifact viewer renders the PNG from a blob: URL once it has downloaded it.
    page.wait_for_function("Array.from(document.images).some("
                           "i => i.src.startsWith('blob:') && i.complete && i.naturalWidth > 300)")
    page.screenshot(path=str(shots / "4_gains_plot.png"))
