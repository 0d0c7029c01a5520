"""Synthetic, verifiable math problems with worked solutions (Phi-4-style data engine).

Public API used by the trainer::

    from rlmath.synth import FAMILIES, generate
    items = generate(1000, seed=0, families=["add", "linear"], difficulty=(1, 3))

Each item is a dict with ``id, family, difficulty, question, answer, solution, meta``; the
``solution`` ends in ``\\boxed{answer}`` and ``meta["split"]`` is the train/test side of its
template instance. ``rlmath synth`` (see `rlmath.synth.command`) writes the same items to disk.
"""

from rlmath.synth.dedup import normalise_question
from rlmath.synth.engine import generate
from rlmath.synth.registry import FAMILIES, Family, Instance

__all__ = ["FAMILIES", "Family", "Instance", "generate", "normalise_question"]
