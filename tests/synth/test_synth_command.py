"""`rlmath synth` end to end: output folder contents, error messages naming the option, atomicity."""

from __future__ import annotations

import io
import json
from pathlib import Path

import datasets
import pytest
from rich.console import Console
from typer.testing import CliRunner

from rlmath.errors import RLMathError
from rlmath.synth import export
from rlmath.synth.command import parse_difficulty, parse_families, run_synth
from rlmath.synth.decontam import EvalTexts


def _run(tmp_path: Path, **kw) -> Path:
    args = {
        "n": 300,
        "seed": 1,
        "out": tmp_path / "ds",
        "families": None,
        "difficulty": "1-5",
        "decontaminate": None,
        "console": Console(file=io.StringIO()),
    }
    args.update(kw)
    return run_synth(**args)


def test_writes_loadable_dataset_with_jsonl_parquet_and_card(tmp_path):
    out = _run(tmp_path, families="add,linear", difficulty="2")
    dd = datasets.load_from_disk(str(out))
    assert set(dd) == {"train", "test"} and len(dd["train"]) + len(dd["test"]) == 300
    assert set(dd["train"][0]) == {"id", "family", "difficulty", "question", "answer", "solution", "meta"}
    assert {r["family"] for r in dd["train"]} == {"add", "linear"} and set(dd["train"]["difficulty"]) == {2}
    lines = (out / "train.jsonl").read_text().splitlines()
    assert len(lines) == len(dd["train"]) and json.loads(lines[0])["id"] == dd["train"][0]["id"]
    assert len(datasets.Dataset.from_parquet(str(out / "test.parquet"))) == len(dd["test"])
    card = (out / "README.md").read_text()
    assert "| add |" in card and "Seed: 1" in card and "engine version" in card
    stats = json.loads((out / "synth_stats.json").read_text())
    assert stats["seed"] == 1 and stats["counts"]["train"] == len(dd["train"])


def test_same_seed_writes_identical_jsonl(tmp_path):
    a = _run(tmp_path, out=tmp_path / "a")
    b = _run(tmp_path, out=tmp_path / "b")
    for name in ("train.jsonl", "test.jsonl"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_rerun_replaces_earlier_output_and_leaves_no_temp_folders(tmp_path):
    _run(tmp_path, n=50)
    _run(tmp_path, n=20)
    assert sum(len(d) for d in datasets.load_from_disk(str(tmp_path / "ds")).values()) == 20
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(export, "_write_rows", boom)
    with pytest.raises(OSError):
        _run(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "precious.txt").write_text("keep me")
    with pytest.raises(RLMathError, match="^out:"):
        _run(tmp_path)
    assert (tmp_path / "ds" / "precious.txt").read_text() == "keep me"


def test_decontamination_drops_overlapping_items_and_reports_them(tmp_path):
    clean = _run(tmp_path, out=tmp_path / "clean", families="add", difficulty="1")
    rows = [json.loads(line) for line in (clean / "train.jsonl").read_text().splitlines()][:25]
    against = EvalTexts("eval.jsonl", [r["question"] for r in rows])
    out = _run(tmp_path, out=tmp_path / "dirty", families="add", difficulty="1", decontaminate=against)
    stats = json.loads((out / "synth_stats.json").read_text())
    assert stats["decontamination"]["dropped"] >= 25 and stats["decontamination"]["against"] == "eval.jsonl"
    kept = {json.loads(line)["question"] for line in (out / "train.jsonl").read_text().splitlines()}
    assert not kept & {r["question"] for r in rows}
    assert "Dropped" in (out / "README.md").read_text()


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"families": "add,nope"}, "families"),
        ({"difficulty": "6"}, "difficulty"),
        ({"difficulty": "5-1"}, "difficulty"),
        ({"difficulty": "easy"}, "difficulty"),
        ({"n": 0}, "n"),
    ],
)
def test_bad_options_raise_rlmath_error_naming_the_field(tmp_path, kw, field):
    with pytest.raises(RLMathError, match=f"^{field}:"):
        _run(tmp_path, **kw)
    assert not (tmp_path / "ds").exists()


def test_parsers():
    assert parse_families(None) is None and parse_families(" add , mul ") == ["add", "mul"]
    assert parse_difficulty("1-5") == (1, 5) and parse_difficulty("4") == (4, 4)


def test_cli_prints_error_and_exits_nonzero(tmp_path):
    from rlmath.cli import app

    result = CliRunner().invoke(app, ["synth", "--n", "5", "--out", str(tmp_path / "x"), "--families", "bogus"])
    assert result.exit_code != 0
    ok = CliRunner().invoke(
        app, ["synth", "--n", "30", "--seed", "2", "--out", str(tmp_path / "y"), "--difficulty", "3"]
    )
    assert ok.exit_code == 0, ok.output
    assert datasets.load_from_disk(str(tmp_path / "y"))["train"][0]["difficulty"] == 3


def test_card_stats_and_printout_report_repeats_and_capacity(tmp_path):
    console = Console(file=io.StringIO(), width=200)
    out = _run(tmp_path, n=1500, families="pythagoras,add", console=console)
    stats = json.loads((out / "synth_stats.json").read_text())
    assert stats["duplicates_dropped"] > 0 and stats["capacity"]["pythagoras"]["estimate"] > 0
    assert stats["counts"]["train"] + stats["counts"]["test"] == 1500 - stats["duplicates_dropped"]
    for side in ("train", "test"):
        questions = [json.loads(line)["question"] for line in (out / f"{side}.jsonl").read_text().splitlines()]
        assert len(set(questions)) == len(questions)
    assert "capacity (est.)" in (out / "README.md").read_text()
    printed = console.file.getvalue()
    assert "capacity (est.)" in printed and f"~{stats['capacity']['pythagoras']['estimate']}" in printed
