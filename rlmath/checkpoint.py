"""Run checkpoints: written atomically, found only when complete, and enough to continue bit-for-bit.

A checkpoint is the folder ``RUN_DIR/checkpoint-STEP/``::

    adapters/          every LoRA adapter of the policy (``default`` at the top, others such as a
                       KL ``reference`` in a sub-folder of their name: peft's own layout)
    trainer_state.pt   state dicts of the recipe's stateful objects (optimizer, scheduler, problem
                       picker, ...) and the torch RNG states; read back with ``weights_only=True``
    state.json         step, policy version, mlflow run id, python/numpy RNG, sampler seed, what the
                       recipe adds (evaluated stages, log offsets, bad-step count)
    manifest.json      written last: every file above with its size

It is written into ``.checkpoint-STEP.partial-*`` beside it, each file fsynced, then renamed: a crash
or a full disk mid-write leaves a ``.partial`` folder that :func:`latest_checkpoint` never returns
(it also re-checks the manifest, so a folder copied by hand without its last file is skipped too).
Only the last ``keep`` complete checkpoints are kept.

The trl-trained stages (SFT warm start, DPO) checkpoint through their own trainer, into
``RUN_DIR/<stage>_checkpoints/checkpoint-STEP/`` (transformers' layout: adapter, optimizer, scheduler,
RNG and trainer state). Transformers writes those in place, so they count as complete only once
:func:`seal` has added the run's facts (``rlmath_state.json``) and the same manifest, written last.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from rlmath.errors import RLMathError
from rlmath.sharding import state_to_save

PREFIX = "checkpoint-"
MANIFEST = "manifest.json"
STATE = "state.json"
TENSORS = "trainer_state.pt"
ADAPTERS = "adapters"
STAGE_STATE = "rlmath_state.json"
STAGES = ("dpo", "sft")  # the trl-trained stages; a run has at most one of them in flight
_NAME = re.compile(rf"^{PREFIX}(\d+)$")


class Stateful(Protocol):
    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class Checkpoint:
    """A complete checkpoint read back: its folder, step, JSON state and tensor state.

    ``stage`` names the trl stage a stage checkpoint (:func:`latest_stage_checkpoint`) is in the middle
    of; it is ``None`` for the recipe's own step checkpoints.
    """

    path: Path
    step: int
    state: dict[str, Any]
    tensors: dict[str, Any]
    stage: str | None = None

    @property
    def run_dir(self) -> Path:
        return self.path.parent.parent if self.stage else self.path.parent

    @property
    def adapters(self) -> Path:
        return self.path / ADAPTERS


# --- RNG ---------------------------------------------------------------------------------------

def capture_rng() -> tuple[dict, dict]:
    """Every process RNG: python and numpy as JSON, torch (CPU and any CUDA devices) as tensors."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    json_part = {"python": [version, list(internal), gauss],
                 "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]}
    tensor_part = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensor_part["cuda"] = torch.cuda.get_rng_state_all()
    return json_part, tensor_part


def restore_rng(json_part: dict, tensor_part: dict) -> None:
    """Put back what :func:`capture_rng` took, so the next random draw is the one the run would have made."""
    version, internal, gauss = json_part["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = json_part["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensor_part["torch"])
    if "cuda" in tensor_part and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(tensor_part["cuda"])


# --- writing -----------------------------------------------------------------------------------

def save_checkpoint(run_dir: Path, step: int, *, model, objects: dict[str, Stateful], state: dict[str, Any],
                    keep: int) -> Path:
    """Write ``checkpoint-STEP`` atomically (temp folder, fsync, rename), then keep the last ``keep``.

    ``model`` is the peft model (all its adapters are saved), ``objects`` the recipe's stateful parts,
    ``state`` JSON-able facts (step, version, run id, ...). A failure removes the temp folder and
    raises :class:`RLMathError` naming the folder; the previous checkpoints stay as they were.
    """
    target = run_dir / f"{PREFIX}{step}"
    tmp = Path(tempfile.mkdtemp(dir=run_dir, prefix=f".{target.name}.partial-"))
    try:
        write_contents(tmp, model, objects, state | {"step": step})
        if target.exists():  # a step redone after resume from an older checkpoint: replace it
            shutil.rmtree(target)
        os.rename(tmp, target)
        _fsync_dir(run_dir)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise RLMathError(f"checkpoint: could not write {target} ({exc.strerror or exc}); "
                              f"the last complete checkpoint is {latest_name(run_dir)}") from None
        raise
    prune_checkpoints(run_dir, keep)
    return target


def write_contents(folder: Path, model, objects: dict[str, Stateful], state: dict[str, Any]) -> None:
    """Adapters, tensor state and JSON state into ``folder``, each fsynced; the manifest last."""
    model.save_pretrained(str(folder / ADAPTERS), selected_adapters=list(model.peft_config),
                          state_dict=state_to_save(model))  # FSDP: rank 0's gathered weights, not its shards
    rng_json, rng_tensors = capture_rng()
    tensors = {"objects": {name: obj.state_dict() for name, obj in objects.items()}, "rng": rng_tensors}
    torch.save(tensors, folder / TENSORS)
    (folder / STATE).write_text(json.dumps(state | {"rng": rng_json}))
    write_manifest(folder)


def write_manifest(folder: Path) -> None:
    """fsync every file of ``folder``, then write the manifest (each file with its size) and fsync it."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    for path in files:
        _fsync_file(path)
    manifest = {str(p.relative_to(folder)): p.stat().st_size for p in files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    _fsync_file(folder / MANIFEST)
    for sub in {p.parent for p in files} | {folder}:
        _fsync_dir(sub)


def stage_folder(run_dir: Path, stage: str) -> Path:
    """Where the trl stage ``stage`` (``sft``/``dpo``) of a run keeps its trainer's checkpoints."""
    return run_dir / f"{stage}_checkpoints"


def seal(folder: Path, state: dict[str, Any], keep: int) -> None:
    """Make a trl trainer's just-written ``checkpoint-STEP`` complete: the run's facts, then the manifest.

    Then only the last ``keep`` complete ones stay (transformers' own rotation is off: it could delete the
    last complete checkpoint before the new one is sealed).
    """
    (folder / STAGE_STATE).write_text(json.dumps(state))
    write_manifest(folder)
    prune_checkpoints(folder.parent, keep)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    """Make a rename durable: the directory entry itself must reach the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` complete checkpoints, and any leftover partial folders."""
    for stale in complete_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(stale, ignore_errors=True)
    for partial in run_dir.glob(f".{PREFIX}*.partial-*"):
        shutil.rmtree(partial, ignore_errors=True)


# --- reading -----------------------------------------------------------------------------------

def is_complete(folder: Path) -> bool:
    """Every file the manifest names is there with its size (the manifest itself is written last)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return all((folder / name).is_file() and (folder / name).stat().st_size == size
               for name, size in manifest.items())


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Complete ``checkpoint-STEP`` folders, oldest first."""
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if (m := _NAME.match(p.name)) and p.is_dir()]
    return [path for _, path in sorted(found) if is_complete(path)]


def latest_name(run_dir: Path) -> str:
    done = complete_checkpoints(run_dir) if run_dir.is_dir() else []
    return done[-1].name if done else "none"


def latest_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The newest complete checkpoint of ``run_dir``, or ``None``."""
    done = complete_checkpoints(run_dir) if run_dir.is_dir() else []
    return load_checkpoint(done[-1]) if done else None


def latest_stage_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The newest sealed checkpoint of the run's trl stage (SFT or DPO), or ``None``; it holds no tensors
    of ours (the trainer restores its own optimizer, scheduler and RNG from the folder)."""
    for stage in STAGES:
        folder = stage_folder(run_dir, stage)
        done = complete_checkpoints(folder) if folder.is_dir() else []
        if done:
            state = json.loads((done[-1] / STAGE_STATE).read_text())
            return Checkpoint(done[-1], int(state["step"]), state, {}, stage=stage)
    return None


def load_checkpoint(folder: Path) -> Checkpoint:
    state = json.loads((folder / STATE).read_text())
    tensors = torch.load(folder / TENSORS, weights_only=True)
    return Checkpoint(folder, int(state["step"]), state, tensors)


def restore_checkpoint(checkpoint: Checkpoint, model, objects: dict[str, Stateful]) -> None:
    """Load every adapter's weights into ``model`` and every object's state; then the RNGs, last."""

    for name in model.peft_config:
        load_adapter_weights(model, checkpoint.adapters, name)
    saved = checkpoint.tensors["objects"]
    missing = sorted(set(objects) - set(saved))
    if missing:
        raise RLMathError(f"checkpoint: {checkpoint.path} holds no state for {missing}")
    for name, obj in objects.items():
        obj.load_state_dict(saved[name])
    restore_rng(checkpoint.state["rng"], checkpoint.tensors["rng"])


def load_adapter_weights(model, folder: Path, name: str = "default") -> None:
    """Adapter ``name``'s weights from a peft save of all adapters (``default`` at the top, others in sub-folders)."""
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = (folder if name == "default" else folder / name) / "adapter_model.safetensors"
    if not weights.is_file():
        raise RLMathError(f"checkpoint: {folder} has no weights for adapter {name!r} ({weights})")
    set_peft_model_state_dict(model, load_file(str(weights)), adapter_name=name)


def find_resumable(run_dir: Path) -> Checkpoint:
    """``--resume RUN_DIR``: its latest complete checkpoint, or an error that says what is there."""
    if not (run_dir / "config.yaml").is_file():
        raise RLMathError(f"--resume {run_dir}: not a run folder (no config.yaml)")
    if (run_dir / "eval.json").is_file():
        raise RLMathError(f"--resume {run_dir}: this run already finished (it has eval.json); nothing to resume")
    # A recipe's step checkpoints come after its trl stage (GRPO's checkpoint-0 follows the SFT warm start).
    checkpoint = latest_checkpoint(run_dir) or latest_stage_checkpoint(run_dir)
    if checkpoint is None:
        raise RLMathError(f"--resume {run_dir}: no complete checkpoint-STEP folder to resume from "
                          f"(checkpoint.every and checkpoint.stage_every are 0, or the run stopped before its first checkpoint); "
                          f"start a new run instead")
    return checkpoint
