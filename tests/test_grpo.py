"""GRPO maths on small tensors, and one real update on a tiny peft model (TRL's test_train idea)."""

from __future__ import annotations

import pytest
import torch

from rlmath.algorithms.grpo import (
    NonFiniteGuard,
    RolloutBatch,
    clipped_surrogate,
    gradient_rows,
    group_advantages,
    grpo_step,
    informative_groups,
    k3_kl,
    kept_groups,
    sequence_weights,
    step_advantages,
    weigh_negatives,
)
from rlmath.config import GRPOConfig, load_config
from rlmath.policy import lora_state, pack_batch


def test_group_advantages_are_zero_mean_per_group_and_unit_std_when_scaled() -> None:
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]])
    adv = group_advantages(rewards, scale=True)
    assert torch.allclose(adv.mean(dim=1), torch.zeros(2), atol=1e-6)
    assert torch.allclose(adv.std(dim=1, unbiased=False), torch.ones(2), atol=1e-3)


def test_all_equal_groups_have_zero_advantage_and_are_not_informative() -> None:
    rewards = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    assert group_advantages(rewards, scale=True)[0].abs().max() == 0
    assert informative_groups(rewards).tolist() == [False, True]


def test_negative_weight_scales_only_the_below_average_rows() -> None:
    adv = group_advantages(torch.tensor([[1.0, 0.0, 0.0, 0.0]]), scale=True)
    for weight in (0.0, 0.3, 1.0):
        out = weigh_negatives(adv, weight)
        assert out[0, 0] == adv[0, 0]  # the correct rollout's advantage is untouched
        assert torch.allclose(out[0, 1:], adv[0, 1:] * weight)


def test_at_negative_weight_zero_the_update_sees_only_the_rows_that_carry_gradient() -> None:
    rewards = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0]])
    kept = torch.ones_like(rewards, dtype=torch.bool)
    kept[0, 0] = False  # e.g. a truncated row under grpo.truncation: mask stays out
    plain = group_advantages(rewards, scale=True)
    positive_only = GRPOConfig(dynamic_sampling=True, negative_weight=0.0)
    rows = gradient_rows(weigh_negatives(plain, 0.0), kept, positive_only)
    assert rows.tolist() == [[False, False, False, False], [True, True, True, False]]
    # plain GRPO, a KL term, or no dynamic sampling: every kept row still goes to the update
    assert torch.equal(gradient_rows(plain, kept, GRPOConfig(dynamic_sampling=True)), kept)
    with_kl = GRPOConfig(dynamic_sampling=True, negative_weight=0.0, beta=0.05)
    assert torch.equal(gradient_rows(weigh_negatives(plain, 0.0), kept, with_kl), kept)
    no_dynamic = GRPOConfig(dynamic_sampling=False, negative_weight=0.0)
    assert torch.equal(gradient_rows(weigh_negatives(plain, 0.0), kept, no_dynamic), kept)


def test_greedy_baseline_measures_each_sample_against_the_prompts_greedy_answer() -> None:
    """ReMax: the advantage is reward minus the greedy completion's reward, not the group mean."""
    rewards = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    greedy = torch.tensor([0.0, 1.0, 0.0])  # greedy wrong, right, wrong
    config = GRPOConfig(baseline="greedy", dynamic_sampling=True, negative_weight=1.0)
    advantages = step_advantages(rewards, config, greedy)
    assert advantages.tolist() == [[1.0] * 4, [0.0, -1.0, -1.0, -1.0], [0.0] * 4]
    # all four samples right where greedy is wrong: the group baseline drops it, the greedy one keeps it
    assert kept_groups(rewards, config, greedy).tolist() == [True, True, False]
    assert kept_groups(rewards, GRPOConfig(dynamic_sampling=True)).tolist() == [False, True, False]
    positive_only = GRPOConfig(baseline="greedy", negative_weight=0.0)
    assert step_advantages(rewards, positive_only, greedy)[1].tolist() == [0.0] * 4
    with pytest.raises(ValueError, match="greedy"):
        step_advantages(rewards, config)
    plain = step_advantages(rewards, GRPOConfig(), greedy)  # the group baseline ignores greedy rewards
    assert torch.equal(plain, group_advantages(rewards, scale=True))


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_sequence_weights_make_total_token_weight_match_the_loss_definition(loss_type: str) -> None:
    lengths = [3, 5, 8]
    weights = sequence_weights(lengths, loss_type, max_tokens=10)
    total = float(sum(w * n for w, n in zip(weights, lengths)))
    expected = {"grpo": 1.0, "dapo": 1.0, "dr_grpo": sum(lengths) / (3 * 10)}[loss_type]
    assert total == pytest.approx(expected)


def test_clip_higher_allows_a_larger_upward_ratio() -> None:
    logp, old = torch.tensor([[0.3]]), torch.tensor([[0.0]])  # ratio e^0.3 ≈ 1.35
    adv = torch.tensor([[1.0]])
    symmetric, _ = clipped_surrogate(logp, old, adv, 0.2, 0.2)
    higher, _ = clipped_surrogate(logp, old, adv, 0.2, 0.28)
    assert float(symmetric) == pytest.approx(-1.2)
    assert float(higher) == pytest.approx(-1.28)


def test_k3_kl_is_zero_at_equality_and_positive_elsewhere() -> None:
    assert float(k3_kl(torch.tensor(0.5), torch.tensor(0.5))) == 0.0
    assert float(k3_kl(torch.tensor(-1.0), torch.tensor(-2.0))) > 0


def test_pack_batch_aligns_completions_after_left_padded_prompts() -> None:
    packed = pack_batch([[1, 2, 3], [7]], [[4, 5], [8, 9, 10]], pad_id=0)
    assert packed.ids.tolist() == [[1, 2, 3, 4, 5, 0], [0, 0, 7, 8, 9, 10]]
    assert packed.mask.tolist() == [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]
    assert packed.positions.tolist() == [[0, 1, 2, 3, 4, 4], [0, 0, 0, 1, 2, 3]]


def test_packed_logprobs_match_unpadded_single_sequences(tiny_policy) -> None:
    """Padding, position ids and logits_to_keep must not change any completion log-prob."""
    from rlmath.policy import sequence_logprobs

    prompts, completions = [[5, 6, 7, 8], [9]], [[11, 12], [13, 14, 15]]
    with torch.no_grad():
        batched = sequence_logprobs(tiny_policy.model, prompts, completions, 0)
        single = [sequence_logprobs(tiny_policy.model, [p], [c], 0)[0] for p, c in zip(prompts, completions)]
    for a, b in zip(batched, single):
        assert torch.allclose(a, b, atol=1e-4)


def test_pack_batch_widens_the_prompt_side_to_a_multiple_and_keeps_completions_exact() -> None:
    packed = pack_batch([[1, 2, 3], [7]], [[4, 5], [8, 9, 10]], pad_id=0, multiple_of=8)
    assert packed.ids.tolist() == [[0, 0, 1, 2, 3, 4, 5, 0], [0, 0, 0, 0, 7, 8, 9, 10]]
    assert packed.attention.sum(dim=1).tolist() == [5, 4]
    assert packed.mask.tolist() == [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]
    assert packed.positions[:, -3:].tolist() == [[3, 4, 4], [1, 2, 3]]
    assert pack_batch([[1] * 5], [[2] * 3], pad_id=0, multiple_of=8).ids.shape == (1, 8)  # already a multiple


def test_extra_left_padding_changes_no_log_prob(tiny_policy) -> None:
    from rlmath.policy import token_logprobs

    prompts, completions = [[5, 6, 7, 8], [9]], [[11, 12], [13, 14, 15]]
    with torch.no_grad():
        exact = token_logprobs(tiny_policy.model, pack_batch(prompts, completions, 0))
        padded = token_logprobs(tiny_policy.model, pack_batch(prompts, completions, 0, multiple_of=16))
    assert torch.allclose(exact, padded, atol=1e-5)


def test_the_update_sees_few_shapes_when_rollouts_come_in_every_length(tiny_policy) -> None:
    """One-row micro-batches of 12 lengths reach the decoder as widths in multiples of ``pad_to_multiple_of``."""
    model = tiny_policy.model
    widths: list[int] = []
    decoder = model.get_base_model().get_decoder()
    hook = decoder.register_forward_pre_hook(lambda _, args, kwargs: widths.append(kwargs["input_ids"].shape[1]),
                                             with_kwargs=True)
    completions = [[11] * n for n in range(1, 13)]
    batch = RolloutBatch([[5, 6, 7]] * 12, completions, [[-1.0] * n for n in range(1, 13)],
                         torch.tensor([1.0, -1.0] * 6))
    config = GRPOConfig(learning_rate=1e-4, micro_batch_size=1, pad_to_multiple_of=8)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    try:
        grpo_step(model, optimizer, batch, config, max_tokens=16, pad_id=0)
    finally:
        hook.remove()
    assert len(widths) == 12 and sorted(set(widths)) == [8, 16]


@pytest.fixture
def tiny_policy():
    from rlmath.models import resolve_model
    from rlmath.policy import load_policy

    config = load_config("configs/smoke.yaml")
    return load_policy(config, resolve_model(config.model.name_or_path))


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_one_step_changes_lora_weights_and_raises_preferred_completion(tiny_policy, loss_type: str) -> None:
    model = tiny_policy.model
    torch.manual_seed(0)
    prompt, good, bad = [5, 6, 7], [11, 12, 13], [21, 22, 23]
    config = GRPOConfig(loss_type=loss_type, learning_rate=1e-3, micro_batch_size=1)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    from rlmath.policy import sequence_logprobs

    def margin() -> float:
        with torch.no_grad():
            lp = sequence_logprobs(model, [prompt, prompt], [good, bad], 0)
        return float(lp[0].sum() - lp[1].sum())

    before = margin()
    with torch.no_grad():
        sampler_lp = [sequence_logprobs(model, [prompt], [c], 0)[0].tolist() for c in (good, bad)]
    initial = lora_state(model)
    for _ in range(3):  # a fresh rollout batch per step: its behaviour log-probs are the current policy's
        batch = RolloutBatch([prompt, prompt], [good, bad], sampler_lp, torch.tensor([1.0, -1.0]))
        metrics = grpo_step(model, optimizer, batch, config, max_tokens=8, pad_id=0)
    changed = [name for name, value in lora_state(model).items() if not torch.equal(value, initial[name])]
    assert changed, "no LoRA weight changed"
    assert margin() > before + 0.1  # the positive-advantage completion gained on the negative one
    assert metrics["grad_norm"] > 0
    assert metrics["mismatch_abs_mean"] >= 0


def _perturb(model, seed: int = 1, scale: float = 0.05) -> None:
    """Move the LoRA off zero, as an SFT warm start would."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, scale)


def _toy_batch(model, offset: float = 0.0, temperature: float = 1.0) -> RolloutBatch:
    from rlmath.policy import sequence_logprobs

    prompts, completions = [[5, 6, 7]] * 4, [[11, 12, 13], [21, 22, 23], [31, 32], [41, 42, 43, 44]]
    with torch.no_grad():
        behaviour = sequence_logprobs(model, prompts, completions, 0, temperature=temperature)
    sampler = [(lp - offset).tolist() for lp in behaviour]  # a sampler that disagrees by exactly `offset`
    return RolloutBatch(prompts, completions, sampler, torch.tensor([1.0, -1.0, 1.0, -1.0]))


def test_reusing_a_batch_clips_against_the_stored_behaviour_logprobs(tiny_policy) -> None:
    """Several optimizer steps on one batch: the ratio moves away from 1 and the clip acts."""
    model = tiny_policy.model
    _perturb(model)
    config = GRPOConfig(learning_rate=3e-2, epochs=4, minibatches=2, micro_batch_size=2, epsilon=0.1)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    metrics = grpo_step(model, optimizer, _toy_batch(model), config, max_tokens=8, pad_id=0)
    assert metrics["optimizer_steps"] == 8
    assert metrics["clip_fraction"] > 0
    assert metrics["ratio_max"] > 1 + config.epsilon


def test_mismatch_is_sampler_versus_trainer_at_the_behaviour_policy_not_policy_drift(tiny_policy) -> None:
    model = tiny_policy.model
    _perturb(model)
    config = GRPOConfig(learning_rate=3e-2, epochs=3, micro_batch_size=4)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    metrics = grpo_step(model, optimizer, _toy_batch(model, offset=0.3), config, max_tokens=8, pad_id=0)
    assert metrics["mismatch_abs_mean"] == pytest.approx(0.3, abs=1e-4)
    assert metrics["mismatch_abs_max"] == pytest.approx(0.3, abs=1e-4)


def test_one_step_per_batch_needs_no_behaviour_pass_and_takes_the_same_step(tiny_policy, monkeypatch) -> None:
    """epochs × minibatches = 1: the loss's own detached log-probs are the behaviour policy's, so the
    separate no-grad pass is skipped, and the step equals the one taken with stored behaviour log-probs."""
    import rlmath.algorithms.grpo as grpo

    model = tiny_policy.model
    _perturb(model)
    config = GRPOConfig(learning_rate=1e-2, micro_batch_size=2)
    start = {name: value.clone() for name, value in lora_state(model).items()}

    def step(batch: RolloutBatch) -> dict:
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in start:
                    param.copy_(start[name])
        # SGD, not Adam: Adam's first step is sign(g), which would blow float noise in near-zero gradients up to lr
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
        metrics = grpo_step(model, optimizer, batch, config, max_tokens=8, pad_id=0)
        return metrics | {"weights": {name: value.clone() for name, value in lora_state(model).items()}}

    stored, bare = _toy_batch(model, offset=0.2), _toy_batch(model, offset=0.2)
    stored.old_logprobs = grpo.behaviour_logprobs(model, stored, 0, 1.0, 4)
    with_pass = step(stored)
    monkeypatch.setattr(grpo, "behaviour_logprobs", lambda *a, **k: pytest.fail("behaviour pass on a one-step batch"))
    without = step(bare)
    for name, value in with_pass["weights"].items():
        assert torch.allclose(value, without["weights"][name], atol=1e-6), name
    assert not torch.equal(with_pass["weights"][next(iter(start))], start[next(iter(start))])
    assert without["ratio_max"] == pytest.approx(1.0)
    assert without["mismatch_abs_mean"] == pytest.approx(0.2, abs=1e-4)  # still sampler vs behaviour policy


def test_loss_uses_the_sampling_temperature(tiny_policy) -> None:
    """Behaviour log-probs taken at T=0.5 match the trainer's at T=0.5: the first step's ratio is 1."""
    model = tiny_policy.model
    _perturb(model)
    config = GRPOConfig(learning_rate=1e-3, micro_batch_size=4)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    batch = _toy_batch(model, temperature=0.5)
    batch.old_logprobs = [list(row) for row in batch.sampler_logprobs]
    metrics = grpo_step(model, optimizer, batch, config, max_tokens=8, pad_id=0, temperature=0.5)
    assert metrics["ratio_max"] == pytest.approx(1.0, abs=1e-4)
    assert metrics["clip_fraction"] == 0


def test_kl_reference_is_the_adapter_at_stage_start_not_the_base(tiny_policy, tmp_path) -> None:
    from rlmath.policy import freeze_reference, reference_logprobs, save_adapter, token_logprobs
    from rlmath.policy import pack_batch as pack

    model = tiny_policy.model
    _perturb(model, scale=0.5)  # "after SFT": far from the base
    stage_start = freeze_reference(model, "stage_start")
    config = GRPOConfig(learning_rate=1e-2, beta=0.1, micro_batch_size=4)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    batch = _toy_batch(model)
    packed = pack(batch.prompt_ids, batch.completion_ids, 0)
    frozen = reference_logprobs(model, stage_start, packed)
    first = grpo_step(model, optimizer, batch, config, max_tokens=8, pad_id=0, reference=stage_start)
    assert first["kl"] == pytest.approx(0.0, abs=1e-6)  # the policy *is* the reference at stage start
    for _ in range(2):
        second = grpo_step(model, optimizer, _toy_batch(model), config, max_tokens=8, pad_id=0, reference=stage_start)
    assert second["kl"] > 0
    assert torch.equal(reference_logprobs(model, stage_start, packed), frozen)  # training never moves it
    with torch.no_grad():
        assert not torch.allclose(token_logprobs(model, packed), frozen)
    base = grpo_step(model, optimizer, _toy_batch(model), config, max_tokens=8, pad_id=0,
                     reference=freeze_reference(model, "base"))
    assert base["kl"] > second["kl"]  # the pre-SFT base is much further away
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".default." in n for n in trainable)
    saved = save_adapter(model, tmp_path / "a")
    assert not (saved / "reference").exists()


def test_nan_optimizer_steps_are_skipped_and_the_guard_stops_stepping_on_the_batch(tiny_policy) -> None:
    """Every minibatch step of a NaN batch is skipped (weights and Adam moments untouched) until the guard trips."""
    model = tiny_policy.model
    _perturb(model)
    config = GRPOConfig(learning_rate=3e-2, epochs=2, minibatches=2, micro_batch_size=2, max_bad_steps=3)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    before = lora_state(model)
    batch = _toy_batch(model)
    batch.advantages = torch.full_like(batch.advantages, float("nan"))  # a broken reward
    guard = NonFiniteGuard(config.max_bad_steps)
    metrics = grpo_step(model, optimizer, batch, config, max_tokens=8, pad_id=0, guard=guard)
    assert guard.tripped and guard.consecutive == 3
    assert metrics["skipped_nonfinite"] == 3 and metrics["optimizer_steps"] == 0  # the 4th step was never tried
    assert metrics["bad_steps/consecutive"] == 3
    assert all(torch.equal(value, before[name]) for name, value in lora_state(model).items())
    assert not optimizer.state  # no Adam moment was ever written


def test_the_guard_counts_across_batches_and_a_good_step_resets_it(tiny_policy) -> None:
    model = tiny_policy.model
    _perturb(model)
    config = GRPOConfig(learning_rate=3e-2, minibatches=2, micro_batch_size=2, max_bad_steps=5)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    guard = NonFiniteGuard(config.max_bad_steps)
    broken = _toy_batch(model)
    broken.advantages = torch.full_like(broken.advantages, float("nan"))
    grpo_step(model, optimizer, broken, config, max_tokens=8, pad_id=0, guard=guard)
    assert guard.consecutive == 2 and not guard.tripped
    metrics = grpo_step(model, optimizer, _toy_batch(model), config, max_tokens=8, pad_id=0, guard=guard)
    assert guard.consecutive == 0 and metrics["optimizer_steps"] == 2 and metrics["skipped_nonfinite"] == 0
    assert all(torch.isfinite(value).all() for value in lora_state(model).values())


def test_a_bfloat16_autocast_update_learns_and_keeps_float32_lora_weights(tiny_policy) -> None:
    """grpo.autocast: bfloat16 runs the forward/backward in bfloat16 but keeps the LoRA weights float32;
    two optimizer steps per batch, so the behaviour log-probs come from the autocast no-grad pass."""
    model = tiny_policy.model
    _perturb(model)
    prompt, good, bad = [5, 6, 7], [11, 12, 13], [21, 22, 23]
    from rlmath.policy import sequence_logprobs

    def margin() -> float:
        with torch.no_grad():
            lp = sequence_logprobs(model, [prompt, prompt], [good, bad], 0)
        return float(lp[0].sum() - lp[1].sum())

    before, initial = margin(), lora_state(model)
    config = GRPOConfig(autocast="bfloat16", learning_rate=1e-3, epochs=2, micro_batch_size=1)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    for _ in range(3):  # a fresh batch per step, its sampler numbers the float32 policy's
        with torch.no_grad():
            sampler = [lp.tolist() for lp in sequence_logprobs(model, [prompt, prompt], [good, bad], 0)]
        batch = RolloutBatch([prompt, prompt], [good, bad], sampler, torch.tensor([1.0, -1.0]))
        metrics = grpo_step(model, optimizer, batch, config, max_tokens=8, pad_id=0)
    assert all(value.dtype == torch.float32 for value in lora_state(model).values())
    assert any(not torch.equal(value, initial[name]) for name, value in lora_state(model).items())
    assert margin() > before + 0.1
    # the bfloat16 update against float32 sampler numbers: a small, measured gap, not zero and not large
    assert 0 < metrics["mismatch_abs_mean"] < 0.05


def test_the_behaviour_pass_under_autocast_equals_the_update_forward(tiny_policy) -> None:
    from rlmath.algorithms.grpo import behaviour_logprobs
    from rlmath.policy import token_logprobs, training_precision

    model = tiny_policy.model
    _perturb(model)
    batch = _toy_batch(model)
    stored = behaviour_logprobs(model, batch, 0, 1.0, micro_batch_size=4, autocast="bfloat16")
    plain = behaviour_logprobs(model, batch, 0, 1.0, micro_batch_size=4)
    packed = pack_batch(batch.prompt_ids, batch.completion_ids, 0)
    with torch.no_grad(), training_precision(model, "bfloat16"):
        update = token_logprobs(model, packed)
    for row, values in enumerate(stored):
        assert values == pytest.approx(update[row, : len(values)].tolist(), abs=1e-6)
    assert stored != plain  # the autocast pass really ran in bfloat16
