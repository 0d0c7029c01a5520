"""Counting and probability: combinations, permutations, word arrangements, dice/cards/urns."""

from __future__ import annotations

import random
from collections import Counter
from fractions import Fraction
from math import comb, factorial, perm

from rlmath.synth.registry import Instance, register
from rlmath.synth.render import frac, tex

_WORDS = ["MATH", "LEVEL", "APPLE", "BANANA", "LETTER", "COFFEE", "BALLOON", "SUCCESS", "MISSISSIPPI", "STATISTICS"]


def _choose(rng: random.Random, difficulty: int) -> Instance:
    """C(n, k) phrased as picking a committee / toppings / cards."""
    n = rng.randint(4, 6 + 3 * difficulty)
    k = rng.randint(2, min(n - 1, 2 + difficulty))
    value = comb(n, k)
    questions = (
        f"In how many ways can a committee of {k} be chosen from {n} people?",
        f"Compute $\\binom{{{n}}}{{{k}}}$.",
        f"A pizza shop offers {n} toppings. How many different pizzas with exactly {k} distinct toppings are possible?",
    )
    steps = (
        f"Order does not matter, so count combinations: $\\binom{{{n}}}{{{k}}} = \\frac{{{n}!}}{{{k}!\\,{n - k}!}}$.",
        f"$\\binom{{{n}}}{{{k}}} = {value}$.",
    )
    return Instance("count.choose", {"n": n, "k": k}, questions, steps, str(value))


def _arrange(rng: random.Random, difficulty: int) -> Instance:
    """P(n, k): ordered selections (podium finishes, officer roles)."""
    n = rng.randint(4, 5 + 2 * difficulty)
    k = rng.randint(2, min(n, 1 + difficulty))
    value = perm(n, k)
    questions = (
        f"{n} runners race. In how many ways can the first {k} places be awarded?",
        f"How many ways are there to choose an ordered list of {k} people from {n}?",
        f"Compute $P({n}, {k})$.",
    )
    factors = " \\times ".join(str(n - i) for i in range(k))
    steps = ("Order matters, so count permutations.", f"$P({n}, {k}) = {factors} = {value}$.")
    return Instance("count.arrange", {"n": n, "k": k}, questions, steps, str(value))


def _word(rng: random.Random, difficulty: int) -> Instance:
    """Distinct arrangements of the letters of a word with repeated letters."""
    word = rng.choice(_WORDS[: 3 + 2 * difficulty])
    counts = Counter(word)
    value = factorial(len(word))
    for c in counts.values():
        value //= factorial(c)
    repeats = ", ".join(f"{ch} appears {c} times" for ch, c in sorted(counts.items()) if c > 1) or "no letter repeats"
    denom = " \\cdot ".join(f"{c}!" for c in counts.values() if c > 1) or "1"
    questions = (
        f"How many distinct arrangements of the letters of {word} are there?",
        f"In how many different ways can the letters of the word {word} be arranged?",
    )
    steps = (
        f"{word} has {len(word)} letters; {repeats}.",
        f"Divide ${len(word)}!$ by the repeats: $\\frac{{{len(word)}!}}{{{denom}}} = {value}$.",
    )
    return Instance("count.word", {"word": word}, questions, steps, str(value))


@register("counting", "combinatorics", "Combinations, permutations and arrangements of words with repeated letters.")
def make_counting(rng: random.Random, difficulty: int) -> Instance:
    return rng.choice([_choose, _arrange] + ([_word] if difficulty >= 2 else []))(rng, difficulty)


def _dice(rng: random.Random, difficulty: int) -> Instance:
    """Probability the sum of two dice takes a value (or exceeds it at higher levels)."""
    target = rng.randint(3, 11)
    at_least = difficulty >= 3 and rng.random() < 0.5
    hits = sum(1 for a in range(1, 7) for b in range(1, 7) if (a + b >= target if at_least else a + b == target))
    p = Fraction(hits, 36)
    cond = f"at least {target}" if at_least else f"exactly {target}"
    questions = (
        f"Two fair six-sided dice are rolled. What is the probability that the sum is {cond}?",
        f"Roll two fair dice. Find the probability that their total is {cond}. Give a fraction.",
    )
    steps = (
        f"There are 36 equally likely outcomes; {hits} of them have sum {cond}.",
        f"$P = \\frac{{{hits}}}{{36}} = {tex(p)}$.",
    )
    return Instance("prob.dice", {"target": target, "at_least": at_least}, questions, steps, frac(p), "fraction")


def _urn(rng: random.Random, difficulty: int) -> Instance:
    """Drawing one or two balls without replacement from an urn."""
    red, blue = rng.randint(2, 3 + 2 * difficulty), rng.randint(2, 3 + 2 * difficulty)
    total = red + blue
    if difficulty <= 2:
        p = Fraction(red, total)
        questions = (
            f"A bag holds {red} red and {blue} blue marbles. One is drawn at random. What is the probability it is red?",
            f"An urn has {red} red balls and {blue} blue balls. Find the probability that a random ball is red.",
        )
        steps = (f"There are {total} marbles, {red} of them red.", f"$P = \\frac{{{red}}}{{{total}}} = {tex(p)}$.")
        return Instance("prob.urn1", {"r": red, "b": blue}, questions, steps, frac(p), "fraction")
    p = Fraction(red, total) * Fraction(red - 1, total - 1)
    questions = (
        f"A bag holds {red} red and {blue} blue marbles. Two are drawn without replacement. What is the probability both are red?",
        f"From an urn with {red} red and {blue} blue balls, two balls are taken without replacement. Find the probability that both are red.",
    )
    steps = (
        f"First draw red: $\\frac{{{red}}}{{{total}}}$; then red again: $\\frac{{{red - 1}}}{{{total - 1}}}$.",
        f"Multiply: $\\frac{{{red}}}{{{total}}} \\cdot \\frac{{{red - 1}}}{{{total - 1}}} = {tex(p)}$.",
    )
    return Instance("prob.urn2", {"r": red, "b": blue}, questions, steps, frac(p), "fraction")


def _coins(rng: random.Random, difficulty: int) -> Instance:
    """Exactly k heads in n fair coin flips."""
    n = rng.randint(2, 3 + difficulty)
    k = rng.randint(0, n)
    p = Fraction(comb(n, k), 2**n)
    questions = (
        f"A fair coin is flipped {n} times. What is the probability of getting exactly {k} heads?",
        f"Flip a fair coin {n} times. Find the probability of exactly {k} heads, as a fraction.",
    )
    steps = (
        f"There are $2^{{{n}}} = {2 ** n}$ equally likely sequences and $\\binom{{{n}}}{{{k}}} = {comb(n, k)}$ have {k} heads.",
        f"$P = {tex(p)}$.",
    )
    return Instance("prob.coins", {"n": n, "k": k}, questions, steps, frac(p), "fraction")


@register(
    "probability", "combinatorics", "Classical probability with dice, urns and coins; answers as reduced fractions."
)
def make_probability(rng: random.Random, difficulty: int) -> Instance:
    return rng.choice([_dice, _urn] + ([_coins] if difficulty >= 2 else []))(rng, difficulty)
