"""Number theory: gcd/lcm, modular arithmetic, prime factorisation and base conversion."""

from __future__ import annotations

import random
from math import gcd
from typing import Dict

from rlmath.synth.registry import Instance, register

_PRIMES = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31]


def factorize(n: int) -> Dict[int, int]:
    """Prime factorisation by trial division (inputs here are below 10^7).

    >>> factorize(360)
    {2: 3, 3: 2, 5: 1}
    """
    out, p = {}, 2
    while p * p <= n:
        while n % p == 0:
            out[p] = out.get(p, 0) + 1
            n //= p
        p += 1
    if n > 1:
        out[n] = out.get(n, 0) + 1
    return out


def _tex_factors(f: Dict[int, int]) -> str:
    """``2^{3} \\cdot 3^{2} \\cdot 5``."""
    return " \\cdot ".join(f"{p}^{{{e}}}" if e > 1 else str(p) for p, e in sorted(f.items()))


def _composite(rng: random.Random, difficulty: int) -> int:
    """A number built from small primes so its factorisation is interesting."""
    n = 1
    for _ in range(difficulty + 2):
        n *= rng.choice(_PRIMES[: 3 + difficulty])
    return n


@register("gcd_lcm", "number theory", "Greatest common divisor and least common multiple via prime factorisations.")
def make_gcd_lcm(rng: random.Random, difficulty: int) -> Instance:
    common = _composite(rng, max(1, difficulty - 2))
    a, b = common * rng.randint(1, 3 + difficulty), common * rng.randint(2, 3 + difficulty)
    nums = [a, b] + ([common * rng.randint(1, 6)] if difficulty == 5 else [])
    g = 0
    lcm = 1
    for n in nums:
        g = gcd(g, n)
        lcm = lcm * n // gcd(lcm, n)
    which = rng.choice(["gcd", "lcm"])
    listed = ", ".join(map(str, nums[:-1])) + f" and {nums[-1]}"
    facts = "; ".join(f"${n} = {_tex_factors(factorize(n))}$" for n in nums)
    if which == "gcd":
        questions = (
            f"What is the greatest common divisor of {listed}?",
            f"Find $\\gcd({', '.join(map(str, nums))})$.",
            f"Find the GCD of {listed}.",
        )
        steps = (
            f"Factor: {facts}.",
            f"Take each common prime to its lowest power: ${_tex_factors(factorize(g)) if g > 1 else '1'} = {g}$.",
        )
        value = g
    else:
        questions = (
            f"What is the least common multiple of {listed}?",
            f"Find $\\operatorname{{lcm}}({', '.join(map(str, nums))})$.",
            f"Find the LCM of {listed}.",
        )
        steps = (
            f"Factor: {facts}.",
            f"Take every prime to its highest power: ${_tex_factors(factorize(lcm))} = {lcm}$.",
        )
        value = lcm
    return Instance(f"nt.{which}", {"nums": nums}, questions, steps, str(value))


@register("modular", "number theory", "Remainders, modular powers and linear congruences.")
def make_modular(rng: random.Random, difficulty: int) -> Instance:
    m = rng.randint(3, 6 + 3 * difficulty)
    if difficulty <= 2:
        n = rng.randint(10**difficulty, 10 ** (difficulty + 1))
        r = n % m
        questions = (
            f"What is the remainder when {n} is divided by {m}?",
            f"Compute ${n} \\bmod {m}$.",
            f"Find ${n} \\pmod{{{m}}}$ as a number from 0 to {m - 1}.",
        )
        steps = (f"${n} = {m} \\cdot {n // m} + {r}$.", f"So the remainder is {r}.")
        return Instance("mod.remainder", {"n": n, "m": m}, questions, steps, str(r))
    if difficulty <= 4:
        b, e = rng.randint(2, 9), rng.randint(5, 10 * difficulty)
        r = pow(b, e, m)
        questions = (
            f"What is the remainder when ${b}^{{{e}}}$ is divided by {m}?",
            f"Compute ${b}^{{{e}}} \\bmod {m}$.",
        )
        cycle, x = [], 1
        while True:
            x = x * b % m
            if x in cycle:
                break
            cycle.append(x)
        steps = (
            f"Powers of {b} modulo {m} go {', '.join(map(str, cycle[:8]))}{', ...' if len(cycle) > 8 else ''} and then repeat.",
            f"Using repeated squaring (or the cycle), ${b}^{{{e}}} \\equiv {r} \\pmod{{{m}}}$.",
        )
        return Instance("mod.power", {"b": b, "e": e, "m": m}, questions, steps, str(r))
    m = rng.choice([7, 11, 13, 17, 19, 23])
    a, x = rng.randint(2, m - 1), rng.randint(0, m - 1)
    c = rng.randint(1, m - 1)
    rhs = (a * x + c) % m
    inv = pow(a, -1, m)
    questions = (
        f"Solve ${a}x + {c} \\equiv {rhs} \\pmod{{{m}}}$ for $0 \\le x < {m}$.",
        f"Find the integer $x$ with $0 \\le x < {m}$ such that ${a}x + {c} \\equiv {rhs} \\pmod{{{m}}}$.",
    )
    steps = (
        f"Subtract {c}: ${a}x \\equiv {(rhs - c) % m} \\pmod{{{m}}}$.",
        f"The inverse of {a} modulo {m} is {inv}, since ${a} \\cdot {inv} \\equiv 1$.",
        f"$x \\equiv {inv} \\cdot {(rhs - c) % m} \\equiv {x} \\pmod{{{m}}}$.",
    )
    return Instance("mod.congruence", {"a": a, "c": c, "rhs": rhs, "m": m}, questions, steps, str(x))


@register(
    "prime_factors", "number theory", "Prime factorisation questions: largest prime factor, divisor counts, sums."
)
def make_prime_factors(rng: random.Random, difficulty: int) -> Instance:
    n = _composite(rng, difficulty)
    f = factorize(n)
    ask = rng.choice(["largest", "distinct", "divisors", "sum"][: 2 + (difficulty + 1) // 2])
    steps = [f"Factor: ${n} = {_tex_factors(f)}$."]
    if ask == "largest":
        value = max(f)
        steps.append(f"The primes are {', '.join(map(str, sorted(f)))}; the largest is {value}.")
        questions = (f"What is the largest prime factor of {n}?", f"Find the greatest prime that divides {n}.")
    elif ask == "distinct":
        value = len(f)
        steps.append(f"The distinct primes are {', '.join(map(str, sorted(f)))}: {value} of them.")
        questions = (f"How many distinct prime factors does {n} have?", f"Count the different primes dividing {n}.")
    elif ask == "divisors":
        value = 1
        for e in f.values():
            value *= e + 1
        product = " \\cdot ".join(str(e + 1) for e in f.values())
        steps.append(f"The number of divisors is the product of (exponent + 1): ${product} = {value}$.")
        questions = (
            f"How many positive divisors does {n} have?",
            f"Find the number of positive integer divisors of {n}.",
        )
    else:
        value = sum(f)
        steps.append(f"Add the distinct primes: ${' + '.join(map(str, sorted(f)))} = {value}$.")
        questions = (
            f"What is the sum of the distinct prime factors of {n}?",
            f"Add up the different primes that divide {n}.",
        )
    return Instance(f"prime.{ask}", {"n": n}, questions, tuple(steps), str(value))


def to_base(n: int, b: int) -> str:
    """Digits of n in base b (b <= 10).

    >>> to_base(11, 2)
    '1011'
    """
    digits = ""
    while n:
        digits = str(n % b) + digits
        n //= b
    return digits or "0"


@register("base_conversion", "number theory", "Convert between base 10 and bases 2-9.")
def make_base_conversion(rng: random.Random, difficulty: int) -> Instance:
    b = rng.choice([2, 8] if difficulty == 1 else [2, 3, 4, 5, 6, 7, 8, 9])
    n = rng.randint(b + 1, 20 * 4**difficulty)  # at least two digits in base b
    digits = to_base(n, b)
    if rng.random() < 0.5:
        expansion = " + ".join(f"{d} \\cdot {b}^{{{len(digits) - 1 - i}}}" for i, d in enumerate(digits) if d != "0")
        questions = (
            f"Convert ${digits}_{{{b}}}$ to base 10.",
            f"What is the base-{b} number {digits} in decimal?",
            f"Write ${digits}_{{{b}}}$ as a base-ten number.",
        )
        steps = (f"Expand by place value: ${expansion} = {n}$.",)
        return Instance("base.to10", {"n": n, "b": b}, questions, steps, str(n))
    steps, x = [], n
    while x:
        steps.append(f"${x} \\div {b} = {x // b}$ remainder {x % b}.")
        x //= b
    steps.append(f"Read the remainders from bottom to top: ${digits}_{{{b}}}$.")
    questions = (
        f"Convert {n} to base {b}. Give just the digits.",
        f"Write the decimal number {n} in base {b} (digits only).",
        f"What is {n} in base {b}? Answer with the digit string.",
    )
    return Instance("base.from10", {"n": n, "b": b}, questions, tuple(steps), digits)
