"""DPO on the LoRA adapter, from verified preference pairs (``algorithm: dpo``).

DPO (Rafailov et al. 2023) raises log p(chosen) - log p(rejected) relative to a frozen reference,
with strength ``dpo.beta``. Phi-4 used it on two kinds of pairs, both available here: whole solutions
(verified correct vs verified wrong rollouts, ``dpo.source: rollouts``) and single pivotal tokens
(``dpo.source: pts``, see :mod:`rlmath.pivotal`); ``dpo.pairs: PATH`` trains on a saved set instead.

What we keep from trl: its ``DPOTrainer`` (sigmoid loss, metrics) and its peft path. The reference is
the adapter the stage starts from, not the bare base: given a PeftModel and no ``ref_model``, trl copies
the active adapter into a second, frozen adapter named ``ref`` and scores the reference through it. We
check that copy exists before training (a silent fall-back to the base would make the KL anchor the
pre-SFT model) and delete it afterwards, so saved adapter files hold the trained adapter only.
What we change: pairs that carry exact token ids are trained on those ids (no re-tokenisation of
``prompt + chosen``, no EOS appended to a single pivotal token); bf16 autocast is off, as in SFT.

Launch: ``rlmath train -c configs/dpo_smoke.yaml`` (tiny model) or ``-c configs/dpo_default.yaml``.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from rlmath.checkpoint import find_resumable, load_adapter_weights
from rlmath.config import Config
from rlmath.errors import RLMathError
from rlmath.eval_report import Stage
from rlmath.pairs import load_pairs, rollout_pairs, save_pairs, solution_pairs, verified_samples
from rlmath.pivotal import run_search
from rlmath.rollout_scoring import score_groups
from rlmath.run import (
    RunState,
    evaluate_and_log,
    finish_run,
    progress_bar,
    resume_stages,
    setup_run,
    sync_adapter,
    training_run,
)
from rlmath.sampling import SamplingRequest
from rlmath.trainer_logs import forward_logs
from rlmath.trl_stage import StageCheckpoints, output_folder, shared_args, train

REFERENCE = "ref"  # the name trl gives the frozen copy of the starting adapter
ID_COLUMNS = ["prompt_ids", "chosen_ids", "rejected_ids"]


def run_dpo(config: Config, console, resume: Path | None = None) -> Path:
    """Evaluate the starting adapter, build or load pairs, DPO, evaluate again, finish like GRPO.

    The starting stage is ``sft`` when the run starts from a saved adapter (``lora.init_adapter``, e.g.
    the SFT warm start) and ``base`` otherwise, so eval.json compares the stage DPO actually improved on.
    ``resume``: a run folder whose DPO stage was stopped; it continues on the run's saved pairs from its
    latest stage checkpoint.
    """
    checkpoint = find_resumable(resume) if resume is not None else None
    trainer = setup_run(config, checkpoint)
    start = "sft" if config.lora.init_adapter else "base"
    with training_run(trainer) as stop:
        if checkpoint is None:  # a resumed stage needs no sampler before it ends: its pairs are saved
            trainer.adapter = sync_adapter(trainer, step=0)
            before = [Stage(start, config.lora.init_adapter, evaluate_and_log(trainer, start, trainer.adapter, step=0))]
            pairs = preference_pairs(trainer, console)
        else:
            before, pairs = resume_stages(trainer, checkpoint), load_pairs(config.dpo.pairs or saved_pairs(trainer))
        checkpoints = StageCheckpoints(trainer, "dpo", before, stop, checkpoint and checkpoint.path)
        with progress_bar(console) as bar:
            task = bar.add_task(f"DPO ({len(pairs)} pairs)", total=None)
            metrics = train_dpo(trainer.policy, pairs, config, trainer.tracker.log_metrics,
                                on_step=lambda step, total: bar.update(task, completed=step, total=total),
                                checkpoints=checkpoints)
        steps = int(metrics["dpo/steps"])
        trainer.tracker.log_metrics(metrics, steps)
        trainer.adapter = sync_adapter(trainer, step=steps)
        after = evaluate_and_log(trainer, "final", trainer.adapter, steps)
        finish_run(trainer, [*before, Stage("final", "adapter", after)], console, last_step=steps)
    return trainer.tracker.run_dir


def saved_pairs(trainer: RunState) -> Path:
    """Where a run keeps the pairs it built (``preference_pairs``), so a resumed DPO trains on the same ones."""
    return trainer.tracker.run_dir / "pairs"


def preference_pairs(trainer: RunState, console):
    """``dpo.pairs`` if given, else pairs built now with the starting adapter; saved in the run folder."""
    cfg = trainer.config.dpo
    if cfg.pairs:
        pairs = load_pairs(cfg.pairs)
        trainer.tracker.log_metrics({"pairs/count": float(len(pairs))}, 0)
        return pairs
    rows = pts_pairs(trainer) if cfg.source == "pts" else sampled_pairs(trainer)
    if not rows:
        raise RLMathError(f"dpo.source={cfg.source}: no preference pairs from {cfg.problems} problems "
                          "(every group was all right or all wrong); try more problems or dpo.source: solutions")
    out = save_pairs(rows, saved_pairs(trainer))
    trainer.tracker.log_artifact(out / "pairs.jsonl", "pairs")
    trainer.tracker.log_metrics({"pairs/count": float(len(rows))}, 0)
    console.print(f"{len(rows)} preference pairs ({cfg.source}) -> {out}")
    return load_pairs(out)


def _problems(trainer: RunState, count: int):
    """A seeded draw of training problems (the synthetic train split is ordered by family)."""
    rng = random.Random(trainer.config.seed)
    return rng.sample(trainer.train, min(count, len(trainer.train)))


def sampled_pairs(trainer: RunState) -> list[dict]:
    """Rollout (or worked-solution) pairs from ``sampling.num_generations`` verified samples per problem."""
    config, tokenizer = trainer.config, trainer.policy.tokenizer
    problems = _problems(trainer, config.dpo.problems)
    prompts = trainer.encoder([p.question for p in problems])
    s = config.sampling
    request = SamplingRequest(n=s.num_generations, temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens)
    groups = trainer.sampler.generate(prompts, request, trainer.adapter)
    scored = score_groups([p.answer for p in problems], groups, config.rewards, s.max_tokens)
    samples = verified_samples(groups, scored.verdicts, scored.rewards, tokenizer.eos_token_id)
    trainer.tracker.log_metrics({"pairs/sample_accuracy": sum(scored.correct) / max(len(scored.correct), 1)}, 0)
    def decode(ids) -> str:  # the prompt text keeps its chat-template tokens
        return tokenizer.decode(ids, skip_special_tokens=False)

    version = f"v{trainer.adapter.version}" if trainer.adapter else "base"
    if config.dpo.source == "solutions":
        return solution_pairs(problems, prompts, samples, decode=decode, eos_id=tokenizer.eos_token_id,
                              encode=lambda text: tokenizer.encode(text, add_special_tokens=False),
                              cap=config.dpo.max_pairs_per_prompt, policy_version=version)
    return rollout_pairs(problems, prompts, samples, decode=decode, strategy=config.dpo.strategy,
                         cap=config.dpo.max_pairs_per_prompt, policy_version=version)


def pts_pairs(trainer: RunState) -> list[dict]:
    """Pivotal-token pairs searched with the starting adapter (the ``pts:`` section)."""
    problems = _problems(trainer, trainer.config.pts.problems)
    prompts = trainer.encoder([p.question for p in problems])
    rows, stats = run_search(problems, prompts, trainer.sampler, trainer.adapter, trainer.policy.tokenizer,
                             trainer.config, f"v{trainer.adapter.version}" if trainer.adapter else "base")
    trainer.tracker.log_metrics({"pts/pivots": float(stats.pivots), "pts/sampling_s": stats.sampling_s}, 0)
    return rows


def train_dpo(policy, pairs, config: Config, log, on_step=None,
              checkpoints: StageCheckpoints | None = None) -> dict[str, float]:
    """DPO on ``policy.model`` (a PeftModel) in place, against a frozen copy of its starting adapter.

    ``log(metrics, step)`` receives trl's logs as ``dpo/...`` (rewards/chosen, rewards/rejected,
    rewards/margins, rewards/accuracies = preference accuracy); ``on_step(step, total)`` drives a bar;
    ``checkpoints`` (in a run) saves and resumes the stage.
    """
    from trl import DPOConfig as TRLDPOConfig

    cfg = config.dpo
    with output_folder(checkpoints, "rlmath-dpo-") as out:
        args = TRLDPOConfig(**shared_args(cfg, config, out, logging_steps=1, checkpoints=checkpoints), beta=cfg.beta,
                            loss_type=list(cfg.loss_type), loss_weights=cfg.loss_weights)
        trainer = _trainer_class()(model=policy.model, args=args, train_dataset=pairs,
                                   processing_class=policy.tokenizer, callbacks=[forward_logs("dpo", log, on_step)])
        try:
            check_reference(policy.model)
            result = train(trainer, checkpoints)
        finally:
            release_reference(policy.model)
    policy.model.config.use_cache = False
    return {"dpo/train_loss": float(result.training_loss), "dpo/steps": float(result.global_step)}


def _trainer_class():
    """trl's DPOTrainer, reading exact token ids when the pairs carry them (ours always do)."""
    from trl import DPOTrainer

    class ExactIdsDPOTrainer(DPOTrainer):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if all(name in dataset.column_names for name in ID_COLUMNS):
                return dataset.select_columns(ID_COLUMNS)
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            # With two adapters saved, transformers reloads only the sub-folder one (our frozen reference)
            # and leaves the trained ``default`` at its starting weights: load it as well.
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            load_adapter_weights(self.model, Path(resume_from_checkpoint), "default")

    return ExactIdsDPOTrainer


def check_reference(model) -> None:
    """The reference must be a frozen copy of the starting adapter, not the adapter-disabled base."""
    if REFERENCE not in getattr(model, "peft_config", {}):
        raise RLMathError("dpo: trl did not create the frozen reference adapter; the reference would be the bare "
                          "base model (check the trl/peft versions)")
    params = dict(model.named_parameters())
    for name, param in params.items():
        if f".{REFERENCE}." in name:
            start = params[name.replace(f".{REFERENCE}.", ".default.")]
            if param.requires_grad or not torch.equal(param, start):
                raise RLMathError(f"dpo: reference adapter weight {name} is trainable or differs from the start")


def release_reference(model) -> None:
    """Drop trl's reference adapter and its forward patches: saved files, vLLM and eval see the policy only."""
    if REFERENCE in getattr(model, "peft_config", {}):
        model.set_adapter("default")
        model.delete_adapter(REFERENCE)
    for module in (model, model.get_base_model()):
        vars(module).pop("forward", None)  # trl's fused LM head (and any autocast wrapper) patch the instance
