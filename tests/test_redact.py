"""Secrets from the environment never cross the tracking boundary or reach a log line."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import pytest

from rlmath.config import load_config
from rlmath.redact import MASK, install_logging_filter, redact, secret_values

ROOT = Path(__file__).resolve().parents[1]
SECRETS = {"HF_TOKEN": "hf_fakeHubTokenAbc123", "MLFLOW_TRACKING_TOKEN": "mlflow-fake-token-xyz",
           "MLFLOW_TRACKING_PASSWORD": "fake-password-42", "SOME_SERVICE_API_KEY": "sk-fakeapikey-777"}


@pytest.fixture
def fake_secrets(monkeypatch) -> dict[str, str]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return SECRETS


@pytest.mark.parametrize("name,value,secret", [
    ("HF_TOKEN", "hf_abcdefgh", True),
    ("GITHUB_TOKEN", "ghp_abcdefgh", True),
    ("AWS_SECRET_ACCESS_KEY", "abcdefghij", True),
    ("MLFLOW_TRACKING_PASSWORD", "hunter22", True),
    ("DB_PASSWORD", "hunter22", True),
    ("PATH", "/usr/bin:/bin", False),
    ("TOKENIZERS_PARALLELISM", "false", False),
    ("MY_KEY", "1", False),  # too short to be a secret; masking it would garble every "1" in the logs
])
def test_secret_names(name: str, value: str, secret: bool) -> None:
    assert (value in secret_values({name: value})) is secret
    assert (redact(f"x {value} y", {name: value}) == f"x {MASK} y") is secret


def test_logging_filter_masks_records_of_any_logger(fake_secrets, caplog) -> None:
    install_logging_filter()
    with caplog.at_level(logging.INFO):
        logging.getLogger("some.library.deep.child").info("auth with %s and %s", fake_secrets["HF_TOKEN"],
                                                          fake_secrets["SOME_SERVICE_API_KEY"])
        logging.getLogger().warning(f"url http://u:{fake_secrets['MLFLOW_TRACKING_PASSWORD']}@host")
    text = caplog.text
    assert text.count(MASK) == 3 and not any(value in text for value in fake_secrets.values())


def test_tracker_keeps_secrets_out_of_config_params_tags_and_samples(fake_secrets, tmp_path: Path) -> None:
    """A secret pasted into a config value (here the system prompt) stays out of what the tracker writes."""
    import mlflow

    from rlmath.tracking import Tracker, tracking_uri

    config = load_config(ROOT / "configs/smoke.yaml", [
        f"output_dir={tmp_path / 'runs'}", f"model.system_prompt=Use key {fake_secrets['SOME_SERVICE_API_KEY']}"])
    run_dir = tmp_path / "runs" / "r"
    run_dir.mkdir(parents=True)
    tracker = Tracker(config, run_dir, kind="eval")
    tracker.set_tags({"note": f"token {fake_secrets['HF_TOKEN']}"})
    tracker.log_samples([{"prompt": f"p {fake_secrets['MLFLOW_TRACKING_TOKEN']}", "completion": "c"}], step=1)
    tracker.log_table([{"prompt": fake_secrets["HF_TOKEN"], "completion": "c"}], "t.json")
    tracker.finish()

    run = mlflow.MlflowClient(tracking_uri(config)).get_run(tracker.run_id)
    assert run.data.params["model.system_prompt"] == f"Use key {MASK}"
    assert run.data.tags["note"] == f"token {MASK}"
    written = b"".join(p.read_bytes() for p in (tmp_path / "runs").rglob("*") if p.is_file())
    assert b"Use key ***" in (run_dir / "config.yaml").read_bytes()
    for value in fake_secrets.values():
        assert value.encode() not in written


class _VanishingEnviron(Mapping):
    """Behaves like ``os.environ`` while another thread removes ``gone`` mid-read: ``__iter__`` walks a
    snapshot of the names, ``__getitem__`` then finds one missing (mlflow's telemetry thread does this)."""

    def __init__(self, data: dict[str, str], gone: str) -> None:
        self._data, self._gone = dict(data), gone

    def __getitem__(self, name: str) -> str:
        return self._data[name]

    def __iter__(self):
        names = list(self._data)
        for name in names:
            yield name
            self._data.pop(self._gone, None)

    def __len__(self) -> int:
        return len(self._data)


def test_a_variable_removed_while_secrets_are_read_is_skipped_not_a_crash() -> None:
    """A demo once died at start with KeyError: '_MLFLOW_TELEMETRY_SESSION_ID' from this read."""
    env = _VanishingEnviron({"A_TOKEN": "tok_123456", "_MLFLOW_TELEMETRY_SESSION_ID": "abcdef12", "Z_KEY": "key_98765"},
                            gone="_MLFLOW_TELEMETRY_SESSION_ID")
    assert sorted(secret_values(env)) == ["key_98765", "tok_123456"]
