"""Whole-number arithmetic: add, sub, mul (difficulty = digits) and order of operations.

These are the trainer demo's families, so questions stay short and answers are plain integers.
"""

from __future__ import annotations

import random
from fractions import Fraction

from rlmath.synth.registry import Instance, register

# (digits of first operand, digits of second operand, number of terms) per difficulty.
_ADD_SHAPE = {1: (1, 2, 2), 2: (2, 3, 2), 3: (3, 4, 2), 4: (4, 5, 3), 5: (5, 6, 3)}
_MUL_SHAPE = {1: ((1, 2), (1, 1)), 2: ((2, 2), (1, 2)), 3: ((2, 3), (2, 2)), 4: ((3, 3), (2, 3)), 5: ((3, 4), (3, 3))}


def _number(rng: random.Random, lo_digits: int, hi_digits: int) -> int:
    """A random integer whose digit count lies in [lo_digits, hi_digits] (1-digit includes 0..9)."""
    digits = rng.randint(lo_digits, hi_digits)
    return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10**digits - 1)


@register("add", "arithmetic", "Sum of two or more whole numbers; difficulty sets digit count and term count.")
def make_add(rng: random.Random, difficulty: int) -> Instance:
    lo, hi, terms = _ADD_SHAPE[difficulty]
    nums = [_number(rng, lo, hi) for _ in range(terms)]
    total = sum(nums)
    expr = " + ".join(map(str, nums))
    if terms == 2:
        a, b = nums
        questions = (
            f"What is {a} + {b}?",
            f"Compute ${a} + {b}$.",
            f"Find the sum of {a} and {b}.",
            f"Add {a} and {b}.",
        )
        steps = (f"Add the two numbers: ${a} + {b} = {total}$.",)
    else:
        listed = ", ".join(map(str, nums[:-1])) + f" and {nums[-1]}"
        questions = (f"What is {expr}?", f"Compute ${expr}$.", f"Find the sum of {listed}.")
        running, steps_l = nums[0], []
        for n in nums[1:]:
            steps_l.append(f"${running} + {n} = {running + n}$.")
            running += n
        steps = ("Add the numbers from left to right.", *steps_l)
    return Instance("add.terms", {"nums": nums}, questions, steps, str(total))


@register("sub", "arithmetic", "Difference of whole numbers; higher levels give negative results and chains.")
def make_sub(rng: random.Random, difficulty: int) -> Instance:
    lo, hi, terms = _ADD_SHAPE[difficulty]
    nums = [_number(rng, lo, hi) for _ in range(terms)]
    if difficulty <= 2 and nums[0] < nums[1]:
        nums[0], nums[1] = nums[1], nums[0]
    result = nums[0] - sum(nums[1:])
    expr = " - ".join(map(str, nums))
    if terms == 2:
        a, b = nums
        questions = (
            f"What is {a} - {b}?",
            f"Compute ${a} - {b}$.",
            f"Subtract {b} from {a}.",
            f"Find the difference {a} minus {b}.",
        )
        steps = (f"Subtract: ${a} - {b} = {result}$.",)
        if result < 0:
            steps = (f"Since {b} > {a}, the result is negative: ${a} - {b} = -({b} - {a}) = {result}$.",)
    else:
        questions = (
            f"What is {expr}?",
            f"Compute ${expr}$.",
            f"Start with {nums[0]} and subtract {nums[1]}, then {nums[2]}. What is left?",
        )
        running, steps_l = nums[0], []
        for n in nums[1:]:
            steps_l.append(f"${running} - {n} = {running - n}$.")
            running -= n
        steps = ("Subtract from left to right.", *steps_l)
    return Instance("sub.terms", {"nums": nums}, questions, steps, str(result))


def _partial_products(a: int, b: int) -> tuple[str, ...]:
    """Long multiplication of a by each place value of b: the steps a student writes."""
    parts = []
    for place, digit in enumerate(reversed(str(b))):
        if digit != "0":
            parts.append((int(digit) * 10**place, a * int(digit) * 10**place))
    if len(parts) == 1:
        return (f"${a} \\times {b} = {a * b}$.",)
    lines = [f"Split {b} by place value: {' + '.join(str(p) for p, _ in reversed(parts))}."]
    lines += [f"${a} \\times {p} = {v}$." for p, v in reversed(parts)]
    lines.append(f"Add the partial products: {' + '.join(str(v) for _, v in reversed(parts))} = {a * b}.")
    return tuple(lines)


@register("mul", "arithmetic", "Product of two whole numbers by long multiplication; difficulty sets digits.")
def make_mul(rng: random.Random, difficulty: int) -> Instance:
    (alo, ahi), (blo, bhi) = _MUL_SHAPE[difficulty]
    a, b = _number(rng, alo, ahi), _number(rng, blo, bhi)
    if difficulty == 5 and rng.random() < 0.5:
        a = -a
    questions = (
        f"What is {a} \u00d7 {b}?",
        f"Compute ${a} \\times {b}$.",
        f"Find the product of {a} and {b}.",
        f"Multiply {a} by {b}.",
    )
    if a < 0:
        steps = ("A negative times a positive is negative.", *_partial_products(-a, b), f"So the product is {a * b}.")
    else:
        steps = _partial_products(a, b)
    return Instance("mul.two", {"a": a, "b": b}, questions, steps, str(a * b))


# ----- order of operations: a small expression tree reduced one operation at a time -----

_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "^": 3}
_SYMBOL = {"+": "+", "-": "-", "*": "\\times", "/": "\\div", "^": "^"}


def _apply(op: str, x: int, y: int) -> int:
    """Evaluate one binary operation on integers (division is exact by construction)."""
    if op == "/":
        return int(Fraction(x, y))
    if op == "^":
        return x**y
    return x + y if op == "+" else x - y if op == "-" else x * y


def _render(node, parent: str = "", right: bool = False) -> str:
    """LaTeX of a tree (int leaves, (op, l, r) nodes) with only the parentheses precedence needs."""
    if isinstance(node, int):
        return f"({node})" if node < 0 and parent else str(node)
    op, left, rt = node
    if op == "^":
        text = f"{_render(left, '^')}^{{{_render(rt)}}}"
    else:
        text = f"{_render(left, op)} {_SYMBOL[op]} {_render(rt, op, right=True)}"
    return f"\\left({text}\\right)" if _bracketed(op, parent, right) else text


def _bracketed(op: str, parent: str, right: bool) -> bool:
    """Whether a child with operator `op` under `parent` must be written in parentheses."""
    outer = _PREC.get(parent, 0)
    # A right operand of equal precedence is bracketed even for + and x, so the written
    # expression is evaluated in exactly the order the worked solution shows.
    return _PREC[op] < outer or (right and _PREC[op] == outer)


def _ready(node, parent: str = "", right: bool = False, path=()):
    """(priority, path) for every operation whose operands are both numbers.

    Priority follows the rule a student is taught: parentheses first, then powers, then
    multiplication/division, then addition/subtraction; ties go left to right.
    """
    if isinstance(node, int):
        return []
    op, left, rt = node
    if isinstance(left, int) and isinstance(rt, int):
        return [((_bracketed(op, parent, right), _PREC[op]), path)]
    return _ready(left, op, False, path + (1,)) + _ready(rt, op, True, path + (2,))


def _reduce_once(node):
    """Evaluate the one ready operation a student would do next."""
    ready = _ready(node)
    best = max(p for p, _ in ready)
    path = next(pa for p, pa in ready if p == best)
    return _replace(node, path)


def _replace(node, path):
    """Copy of `node` with the operation at `path` evaluated."""
    if not path:
        return _apply(*node)
    op, left, rt = node
    if path[0] == 1:
        return (op, _replace(left, path[1:]), rt)
    return (op, left, _replace(rt, path[1:]))


def _ops(node) -> int:
    """Number of operations in a tree."""
    return 0 if isinstance(node, int) else 1 + _ops(node[1]) + _ops(node[2])


def _tree(rng: random.Random, depth: int, hi: int, allow_pow: bool):
    """A random expression tree with integer values; returns (tree, value)."""
    if depth == 0:
        v = rng.randint(1, hi)
        return v, v
    op = rng.choice("+-*/" + ("^" if allow_pow else ""))
    left, lv = _tree(rng, rng.randint(0, depth - 1), hi, allow_pow)
    if op == "^":
        if not isinstance(left, int) or abs(lv) > 9:
            op = "*"
        else:
            e = rng.randint(2, 3)
            return ("^", left, e), lv**e
    if op == "/":
        divisors = [d for d in range(2, 13) if lv != 0 and lv % d == 0]
        if divisors:
            d = rng.choice(divisors)
            return ("/", left, d), lv // d
        op = "+"
    right, rv = _tree(rng, rng.randint(0, depth - 1), hi, allow_pow)
    return (op, left, right), _apply(op, lv, rv)


@register("order_of_operations", "arithmetic", "Evaluate an integer expression respecting precedence and parentheses.")
def make_order_of_operations(rng: random.Random, difficulty: int) -> Instance:
    ops = difficulty + 1
    hi = {1: 9, 2: 12, 3: 15, 4: 20, 5: 25}[difficulty]
    while True:
        tree, value = _tree(rng, 3, hi, allow_pow=difficulty >= 4)
        if ops - 1 <= _ops(tree) <= ops and abs(value) < 10**5:
            break
    expr = _render(tree)
    steps, node = [], tree
    while not isinstance(node, int):
        node = _reduce_once(node)
        steps.append(f"$= {_render(node)}$")
    steps[0] = f"${expr} {steps[0][1:]}"
    steps.insert(
        0,
        "Work inside parentheses first, then powers, then multiplication and division, then addition and subtraction.",
    )
    questions = (
        f"Evaluate ${expr}$.",
        f"What is the value of ${expr}$?",
        f"Compute ${expr}$ using the order of operations.",
    )
    return Instance("order.tree", {"expr": expr}, questions, tuple(steps), str(value))
