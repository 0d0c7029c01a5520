"""Multi-step word problems from templates (GSM8K-style): several quantities and operations.

Names, objects and phrasings vary independently of the numbers, so a model cannot learn the
wording; difficulty adds steps and makes the numbers larger.
"""

from __future__ import annotations

import random

from rlmath.synth.registry import Instance, register

_NAMES = ["Maya", "Liam", "Sofia", "Noah", "Aisha", "Mateo", "Priya", "Lucas", "Zoe", "Kenji", "Amara", "Omar"]
_GOODS = [
    ("notebook", "notebooks"),
    ("pen", "pens"),
    ("apple", "apples"),
    ("sticker", "stickers"),
    ("book", "books"),
    ("candle", "candles"),
]


def _count(n: int, noun: str) -> str:
    """``1 hour`` / ``3 hours``: stories read naturally for every number."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _shopping(rng: random.Random, difficulty: int) -> Instance:
    """Buy two kinds of items, optionally with a discount, pay with a bill; find the change."""
    name = rng.choice(_NAMES)
    (one_a, many_a), (one_b, many_b) = rng.sample(_GOODS, 2)
    qa, pa = rng.randint(2, 3 + difficulty), rng.randint(2, 4 * difficulty + 2)
    qb, pb = rng.randint(1, 2 + difficulty), rng.randint(1, 3 * difficulty + 2)
    cost = qa * pa + qb * pb
    steps = [
        f"{many_a.capitalize()}: ${qa} \\times {pa} = {qa * pa}$ dollars.",
        f"{many_b.capitalize()}: ${qb} \\times {pb} = {qb * pb}$ dollars.",
        f"Total: ${qa * pa} + {qb * pb} = {cost}$ dollars.",
    ]
    discount = 0
    if difficulty >= 4:
        discount = rng.choice([5, 10])
        cost -= discount
        steps.append(f"After the {discount}-dollar coupon: ${cost + discount} - {discount} = {cost}$ dollars.")
    bill = next(b for b in (20, 50, 100, 200, 500) if b >= cost)
    steps.append(f"Change from {bill}: ${bill} - {cost} = {bill - cost}$ dollars.")
    coupon = f" {name} uses a {discount}-dollar coupon." if discount else ""
    questions = (
        f"{name} buys {qa} {many_a} at {pa} dollars each and {qb} {many_b} at {pb} dollars each.{coupon} {name} pays with a {bill}-dollar bill. How much change, in dollars, does {name} get?",
        f"A {one_a} costs {pa} dollars and a {one_b} costs {pb} dollars. {name} buys {qa} {many_a} and {qb} {many_b}.{coupon} How many dollars of change come back from a {bill}-dollar bill?",
        f"At the shop, {many_a} are {pa} dollars each and {many_b} are {pb} dollars each. {name} takes {qa} {many_a} and {qb} {many_b}.{coupon} Paying with {bill} dollars, what change should {name} receive?",
    )
    params = {"qa": qa, "pa": pa, "qb": qb, "pb": pb, "discount": discount}
    return Instance("word.shopping", params, questions, tuple(steps), str(bill - cost))


def _savings(rng: random.Random, difficulty: int) -> Instance:
    """Weekly earnings minus weekly spending over several weeks, plus a starting amount."""
    name = rng.choice(_NAMES)
    earn, spend = rng.randint(10, 10 * difficulty + 20), rng.randint(1, 9)
    weeks, start = rng.randint(3, 4 + 2 * difficulty), rng.randint(0, 10 * difficulty) if difficulty >= 3 else 0
    net = earn - spend
    total = start + net * weeks
    steps = [
        f"Each week {name} keeps ${earn} - {spend} = {net}$ dollars.",
        f"Over {weeks} weeks: ${net} \\times {weeks} = {net * weeks}$ dollars.",
    ]
    if start:
        steps.append(f"Add the starting {start} dollars: ${net * weeks} + {start} = {total}$.")
    had = f" already has {start} dollars and" if start else ""
    questions = (
        f"{name}{had} earns {earn} dollars a week walking dogs and spends {_count(spend, 'dollar')} a week on snacks. How many dollars does {name} have after {weeks} weeks?",
        f"Every week {name} is paid {earn} dollars and spends {_count(spend, 'dollar')}.{f' {name} starts with {start} dollars.' if start else ''} How much money does {name} have after {weeks} weeks?",
    )
    return Instance(
        "word.savings",
        {"earn": earn, "spend": spend, "weeks": weeks, "start": start},
        questions,
        tuple(steps),
        str(total),
    )


def _bakery(rng: random.Random, difficulty: int) -> Instance:
    """Produce trays of items, sell and give some away, pack the rest into boxes."""
    trays, per = rng.randint(2, 2 + difficulty), rng.randint(6, 6 + 4 * difficulty)
    made = trays * per
    box = rng.choice([4, 5, 6])
    sold = rng.randint(1, made // 2)
    given = rng.randint(0, made // 4) if difficulty >= 2 else 0
    left = made - sold - given
    left -= left % box
    sold = made - given - left
    boxes = left // box
    steps = [
        f"Baked: ${trays} \\times {per} = {made}$ muffins.",
        f"Left after selling {sold}{f' and giving away {given}' if given else ''}: ${made} - {sold}{f' - {given}' if given else ''} = {left}$.",
        f"Boxes of {box}: ${left} \\div {box} = {boxes}$.",
    ]
    gave = f" and gives {given} to neighbours" if given else ""
    questions = (
        f"A bakery bakes {trays} trays of {per} muffins. It sells {sold} muffins{gave}. The rest are packed in boxes of {box}. How many boxes are filled?",
        f"There are {trays} trays with {per} muffins on each. After {sold} are sold{f' and {given} are given away' if given else ''}, the remaining muffins go into boxes holding {box} each. How many boxes are needed?",
    )
    return Instance(
        "word.bakery",
        {"trays": trays, "per": per, "sold": sold, "given": given, "box": box},
        questions,
        tuple(steps),
        str(boxes),
    )


def _travel(rng: random.Random, difficulty: int) -> Instance:
    """Two legs of a trip at different speeds; total distance (or average speed at level 5)."""
    v1, t1 = rng.randint(4, 12) * 5, rng.randint(1, 2 + difficulty)
    v2, t2 = rng.randint(4, 12) * 5, rng.randint(1, 1 + difficulty)
    d1, d2 = v1 * t1, v2 * t2
    steps = [
        f"First leg: ${v1} \\times {t1} = {d1}$ km.",
        f"Second leg: ${v2} \\times {t2} = {d2}$ km.",
        f"Total: ${d1} + {d2} = {d1 + d2}$ km.",
    ]
    name = rng.choice(_NAMES)
    if difficulty == 5 and (d1 + d2) % (t1 + t2) == 0:
        steps.append(f"Average speed: ${d1 + d2} \\div {t1 + t2} = {(d1 + d2) // (t1 + t2)}$ km/h.")
        questions = (
            f"{name} drives {_count(t1, 'hour')} at {v1} km/h and then {_count(t2, 'hour')} at {v2} km/h. What is the average speed for the whole trip in km/h?",
        )
        return Instance(
            "word.avg_speed", {"v": [v1, v2], "t": [t1, t2]}, questions, tuple(steps), str((d1 + d2) // (t1 + t2))
        )
    questions = (
        f"{name} drives {_count(t1, 'hour')} at {v1} km/h and then {_count(t2, 'hour')} at {v2} km/h. How many kilometres does {name} travel in total?",
        f"A train runs at {v1} km/h for {_count(t1, 'hour')}, then at {v2} km/h for {_count(t2, 'hour')}. What total distance does it cover, in km?",
    )
    return Instance("word.travel", {"v": [v1, v2], "t": [t1, t2]}, questions, tuple(steps), str(d1 + d2))


def _ages(rng: random.Random, difficulty: int) -> Instance:
    """A parent is k times a child's age; find an age n years later."""
    child, k, n = rng.randint(3, 12), rng.randint(2, 3 + difficulty // 2), rng.randint(2, 5 * difficulty)
    parent = child * k
    a, b = rng.sample(_NAMES, 2)
    total = parent + child + 2 * n
    steps = (
        f"{a} is ${k} \\times {child} = {parent}$ years old now.",
        f"In {n} years they will be {parent + n} and {child + n}.",
        f"Sum: ${parent + n} + {child + n} = {total}$.",
    )
    questions = (
        f"{b} is {child} years old. {a} is {k} times as old as {b}. What will the sum of their ages be in {n} years?",
        f"{a} is {k} times as old as {b}, who is {child}. In {n} years, what will their ages add up to?",
    )
    return Instance("word.ages", {"child": child, "k": k, "n": n}, questions, steps, str(total))


@register(
    "word_problems", "word problems", "Multi-step GSM-style story problems (shopping, savings, baking, travel, ages)."
)
def make_word_problems(rng: random.Random, difficulty: int) -> Instance:
    return rng.choice([_shopping, _savings, _bakery, _travel, _ages])(rng, difficulty)
