"""The ``rlmath`` command line.

Each command imports its heavy modules lazily (torch, vllm, mlflow), so ``rlmath --help`` is
instant and a bad config is reported before anything large loads. Config errors exit with code 2
and one line per wrong key, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from rlmath.allocator import reexec_on_mimalloc
from rlmath.errors import RLMathError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[0])
bench_app = typer.Typer(no_args_is_help=True,
                        help="Benchmarks that print ratios against a peer measured in the same run.")
app.add_typer(bench_app, name="bench")
console = Console(stderr=True)

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML config (defaults if omitted).")
SetOpt = typer.Option(None, "--set", help="Override a config key: --set grpo.steps=5 (repeatable).")


def _load(config: Optional[Path], overrides: Optional[List[str]]):
    """Load the config or exit 2 with the offending key named."""
    from rlmath.config import ConfigError, load_config

    try:
        return load_config(config, overrides or [])
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def _recipe(algorithm: str):
    """The recipe function of ``config.algorithm``, imported only when that recipe runs."""
    if algorithm == "sft":
        from rlmath.algorithms.sft import run_sft

        return run_sft
    if algorithm == "dpo":
        from rlmath.algorithms.dpo import run_dpo

        return run_dpo
    from rlmath.loop import run_training

    return run_training


@app.command()
def train(
    config: Optional[Path] = ConfigOpt,
    set_: Optional[List[str]] = SetOpt,
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this run folder from its latest "
                                          "complete checkpoint, with its own config.yaml, into the same mlflow run."),
) -> None:
    """Train a LoRA adapter (GRPO; SFT or DPO with algorithm: sft|dpo) and track it in mlflow."""
    from rlmath.interrupt import RunInterrupted

    cfg = _resume_config(resume, config, set_) if resume is not None else _load(config, set_)
    try:
        run_dir = _recipe(cfg.algorithm)(cfg, console=console, resume=resume)
    except RLMathError as exc:
        _fail(str(exc))
    except RunInterrupted as exc:
        _fail(exc.message, exc.exit_code)
    if run_dir is not None:  # None on the ranks > 0 of a multi-process launch
        console.print(f"[green]run folder:[/green] {run_dir}")


def _resume_config(run_dir: Path, config: Optional[Path], overrides: Optional[List[str]]):
    """A resumed run keeps its own config.yaml: the same seed and settings are what make it continue exactly."""
    if config is not None or overrides:
        _fail("--resume continues a run with its own config.yaml; drop -c/--set", 2)
    if not (run_dir / "config.yaml").is_file():
        _fail(f"--resume {run_dir}: not a run folder (no config.yaml)", 2)
    return _load(run_dir / "config.yaml", [])


@app.command("eval")
def evaluate(
    config: Optional[Path] = ConfigOpt,
    set_: Optional[List[str]] = SetOpt,
    dataset: Optional[str] = typer.Option(None, help="gsm8k, math, math500, a local JSONL/parquet/CSV/datasets "
                                          "folder, or a hub id (default: the config's held-out split)."),
    split: Optional[str] = typer.Option(None, help="Dataset split (default: the preset's, else test/train)."),
    question_field: Optional[str] = typer.Option(None, help="Question field (default: question, else problem)."),
    answer_field: Optional[str] = typer.Option(None, help="Answer field; '####' and \\boxed{} golds are extracted."),
    category_field: Optional[str] = typer.Option(None, help="Field to break accuracy down by (subject, type, ...)."),
    adapter: Optional[str] = typer.Option(None, help="Adapter folder, run folder/name holding adapter/, or mlflow "
                                          "run id."),
    compare: Optional[str] = typer.Option(None, "--compare", help="'base', or a second adapter/run folder: evaluate "
                                          "it on the same items and report the paired difference."),
    compare_base: bool = typer.Option(False, "--compare-base", help="Same as --compare base."),
    k: Optional[str] = typer.Option(None, "--k", help="pass@k/maj@k sample counts, e.g. 1,4,8 (default: eval.k)."),
    limit: Optional[int] = typer.Option(None, help="Evaluate the first N items only."),
    out: Optional[Path] = typer.Option(None, help="Also write the eval.json report (schema v1) here."),
) -> None:
    """Accuracy, pass@k, maj@k with 95% CIs of the model and/or an adapter; an mlflow run with tables and plots."""
    cfg = _load(config, set_)
    from rlmath.eval_command import EvalOptions, run_eval_command
    from rlmath.eval_stats import parse_ks

    if compare_base and compare not in (None, "base"):
        _fail(f"--compare-base is --compare base; it cannot be combined with --compare {compare}", 2)

    try:
        ks = tuple(parse_ks(k)) if k else None
    except ValueError as exc:
        _fail(str(exc), 2)
    options = EvalOptions(dataset=dataset, split=split, question_field=question_field, answer_field=answer_field,
                          category_field=category_field, adapter=adapter,
                          compare="base" if compare_base else compare, ks=ks, limit=limit, out=out)
    try:
        run_eval_command(cfg, options, console=console)
    except RLMathError as exc:
        _fail(str(exc))


@app.command()
def pts(
    config: Optional[Path] = ConfigOpt,
    set_: Optional[List[str]] = SetOpt,
    out: Path = typer.Option(..., help="Output folder for the pairs (datasets folder + pairs.jsonl); must be new or empty."),
) -> None:
    """Pivotal Token Search (Phi-4 4.3): single-token DPO pairs from the configured policy, tracked in mlflow."""
    cfg = _load(config, set_)
    from rlmath.algorithms.pts import run_pts
    from rlmath.errors import RLMathError

    try:
        run_pts(cfg, out, console=console)
    except RLMathError as exc:
        _fail(str(exc))


@app.command()
def ui(
    config: Optional[Path] = ConfigOpt,
    set_: Optional[List[str]] = SetOpt,
    port: int = typer.Option(5000, help="Port on 127.0.0.1."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind; keep loopback unless you mean to share runs."),
) -> None:
    """Start the mlflow UI over the runs/ store (output_dir) and print its URL."""
    cfg = _load(config, set_)
    from rlmath.ui import serve

    try:
        serve(Path(cfg.output_dir), host=host, port=port, console=console, experiment=cfg.tracking.experiment)
    except RuntimeError as exc:
        _fail(str(exc))


@app.command()
def export(
    run: str = typer.Argument(..., help="Run folder, mlflow run id, or registered version models:/rlmath-adapter/3."),
    out: Path = typer.Option(..., help="Export folder (adapter, tokenizer, config.yaml, README.md model card)."),
    merge: bool = typer.Option(False, "--merge", help="Also write merged/: the adapter folded into the base weights."),
    push: bool = typer.Option(False, "--push", help="Upload the folder to the Hugging Face Hub (token: HF_TOKEN "
                              "or the login cache)."),
    repo_id: Optional[str] = typer.Option(None, "--repo-id", help="Hub repo ORG/NAME for --push (created if missing)."),
    private: bool = typer.Option(False, "--private", help="With --push: create the repo private."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty --out folder."),
    config: Optional[Path] = ConfigOpt,
    set_: Optional[List[str]] = SetOpt,
) -> None:
    """Export a run's adapter as a Hub-ready folder with a model card; optionally merge and push."""
    cfg = _load(config, set_)  # only says where the mlflow store is, for run ids and models:/ URIs
    from rlmath.errors import RLMathError
    from rlmath.export import ExportOptions, export_run

    options = ExportOptions(out=out, merge=merge, push=push, repo_id=repo_id, private=private, force=force)
    try:
        export_run(run, options, cfg, console)
    except RLMathError as exc:
        _fail(str(exc))


@app.command()
def synth(
    n: int = typer.Option(1000, "--n", help="Number of problems."),
    seed: int = typer.Option(0, help="Seed; the same seed gives identical output."),
    out: Path = typer.Option(..., help="Output folder (a datasets.save_to_disk folder + JSONL/parquet + card)."),
    families: Optional[str] = typer.Option(None, help="Comma-separated family names (default: all)."),
    difficulty: str = typer.Option("1-5", help="A level (3) or a range (1-5)."),
    decontaminate_against: Optional[str] = typer.Option(None, help="Eval set to drop overlaps with: gsm8k, math, math500, a local file/folder or a hub id."),
    from_model: bool = typer.Option(False, "--from-model", help="Rejection-sample verified solutions from -c's model."),
    config: Optional[Path] = ConfigOpt,
    set_: Optional[List[str]] = SetOpt,
    k: int = typer.Option(4, "--k", help="With --from-model: samples per problem."),
) -> None:
    """Generate verifiable synthetic math problems with worked solutions (or the model's verified ones)."""
    try:
        if from_model:
            cfg = _load(config, set_)
            from rlmath.self_data import sample_verified

            sample_verified(cfg, out, n=n, k=k, console=console)
            return
        from rlmath.sources import question_texts
        from rlmath.synth.command import run_synth
        from rlmath.synth.decontam import EvalTexts

        against = (EvalTexts(decontaminate_against, question_texts(decontaminate_against))
                   if decontaminate_against else None)
        run_synth(n=n, seed=seed, out=out, families=families, difficulty=difficulty, decontaminate=against,
                  console=console)
    except RLMathError as exc:
        _fail(str(exc))


BenchOut = typer.Option(None, "--out", help="JSON result file (default runs/bench_<name>.json).")
BenchConfig = typer.Option(Path("configs/default.yaml"), "--config", "-c", help="YAML config of the model to bench.")


def _bench_out(out: Optional[Path], name: str) -> Path:
    return out or Path("runs") / f"bench_{name}.json"


def _bench(name: str, call) -> None:
    """Run one bench; an RLMathError is a clear message and exit 1, never a traceback."""
    from rlmath.errors import RLMathError

    try:
        call()
    except RLMathError as exc:
        _fail(f"bench {name}: {exc}")


@bench_app.command("verifier")
def bench_verifier(out: Optional[Path] = BenchOut) -> None:
    """rewards.verify vs math-verify on the same public cases: agreement and throughput ratio."""
    from rlmath.bench.verifier import run

    _bench("verifier", lambda: run(_bench_out(out, "verifier"), console=console))


@bench_app.command("sampling")
def bench_sampling(
    config: Path = BenchConfig,
    set_: Optional[List[str]] = SetOpt,
    prompts: int = typer.Option(16, help="Prompts to sample."),
    n: int = typer.Option(8, help="Completions per prompt."),
    max_tokens: int = typer.Option(64, help="Tokens per completion."),
    repeats: int = typer.Option(3, help="Timed rounds per sampler (medians are reported)."),
    modes: str = typer.Option("adapter,merged", help="vLLM sync modes to time (comma-separated)."),
    out: Optional[Path] = BenchOut,
) -> None:
    """vLLM (each sync mode, sync included) vs HF generate, adapter active, same prompts: tokens/s ratio."""
    cfg = _load(config, set_)
    from rlmath.bench.sampling import MODES, run

    chosen = tuple(m.strip() for m in modes.split(",") if m.strip())
    if not chosen or set(chosen) - set(MODES):
        _fail(f"--modes: {modes!r} must name some of {', '.join(MODES)}", 2)
    _bench("sampling", lambda: run(cfg, prompts=prompts, n=n, max_tokens=max_tokens, repeats=repeats,
                                   modes=chosen, out=_bench_out(out, "sampling"),
                                   console=console))


@bench_app.command("sync")
def bench_sync(
    config: Path = BenchConfig,
    set_: Optional[List[str]] = SetOpt,
    repeats: int = typer.Option(3, help="Adapter versions handed over per mode (medians are reported)."),
    out: Optional[Path] = BenchOut,
) -> None:
    """rlmath's adapter hand-over to vLLM (merged in place, adapter files) vs merge + save + new engine: seconds."""
    cfg = _load(config, set_)
    from rlmath.bench.sync import run

    _bench("sync", lambda: run(cfg, repeats=repeats, out=_bench_out(out, "sync"), console=console))


@bench_app.command("memory")
def bench_memory(
    config: Path = BenchConfig,
    set_: Optional[List[str]] = SetOpt,
    budget: float = typer.Option(4.0, help="Peak RSS budget in GiB (the ratio is peak / budget)."),
    out: Optional[Path] = BenchOut,
) -> None:
    """Peak RSS of a bounded `rlmath train` run of the config (2 GRPO steps, short SFT, 16 eval items)."""
    _load(config, set_)  # fail fast, exit 2, on a bad config
    from rlmath.bench.memory import run

    _bench("memory", lambda: run(str(config), list(set_ or []), budget_gib=budget, out=_bench_out(out, "memory"),
                                 console=console))


@bench_app.command("step")
def bench_step(
    config: Path = BenchConfig,
    set_: Optional[List[str]] = SetOpt,
    steps: int = typer.Option(2, help="Timed steps per side after one warm-up step (medians are reported)."),
    out: Optional[Path] = BenchOut,
) -> None:
    """One rlmath GRPO step vs one TRL GRPOTrainer step on the same model, prompts, k, lengths, LoRA: seconds."""
    cfg = _load(config, set_)
    from rlmath.bench.step import run

    _bench("step", lambda: run(cfg, steps=steps, out=_bench_out(out, "step"), console=console))


def main() -> None:  # pragma: no cover - console entry
    """The ``rlmath`` command: first onto mimalloc (:mod:`rlmath.allocator`), then the typer app."""
    try:
        reexec_on_mimalloc()
    except RLMathError as exc:  # outside the typer app: typer.Exit would not be caught here
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None
    app()


if __name__ == "__main__":  # pragma: no cover - vLLM spawns processes; the guard keeps them sane
    main()
