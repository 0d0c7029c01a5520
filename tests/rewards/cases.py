"""The public verifier cases (rlmath/bench/data/verifier_cases.json), shared by the tests and the benchmark."""

import json
from pathlib import Path

CASES_FILE = Path(__file__).resolve().parents[2] / "rlmath" / "bench" / "data" / "verifier_cases.json"


def load_cases() -> list[dict]:
    return json.loads(CASES_FILE.read_text())["cases"]
