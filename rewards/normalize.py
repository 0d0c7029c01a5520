"""String clean-up before parsing: the MATH/Qwen-style normalisations that carry no math.

Units and ``\\text{}`` words, degree signs, dollar signs, thousands separators and mixed numbers are
handled here with whole-answer regexes, so ``1,000`` is a thousand but ``\\{1,2\\}`` stays a set.
"""

from __future__ import annotations

import re

UNIT_WORDS = (
    "square units|square feet|square inches|square meters|square centimeters|sq units|units?|"
    "cm|mm|km|meters?|centimeters?|kilometers?|inches|inch|feet|foot|ft|yards?|miles?|mph|"
    "degrees?|radians?|dollars?|cents?|seconds?|minutes?|hours?|days?|weeks?|months?|years?|"
    "kg|grams?|pounds?|lbs?|ounces?|oz|liters?|gallons?|cups?|people|students|ways|times|points|"
    "percent|pages|marbles|apples|cookies|books|cars|items|boxes|tickets|eggs|coins|children"
)
_UNIT_TAIL_RE = re.compile(
    rf"^(?P<body>.*?[\d}}\)a-zA-Z])\s*(?:\\(?:text|mbox|mathrm|textbf|textnormal)\s*\{{\s*[^{{}}]*\}}|(?:\\,|\\ |\s)*(?:{UNIT_WORDS})(?:\^\d|\^\{{\d\}})?)\s*\.?$"
)
_THOUSANDS_RE = re.compile(r"^(-?\$?)([1-9]\d{0,2}(?:(?:,|\{,\}|\\,|\\ | |\\!)\d{3})+)(\.\d+)?$")
_MIXED_RE = re.compile(r"^(-?)(\d+)\s*(?:\\frac\s*(?:\{(\d+)\}|(\d))\s*(?:\{(\d+)\}|(\d))|\s(\d+)\s*/\s*(\d+))$")
_SPACE_COMMANDS = re.compile(r"(?<!\\)\\[,;: ]|\\q?quad|~|\\displaystyle|\\limits")
_RELATION_ALIASES = ((r"\\geqslant|\\geq|\\ge(?![a-zA-Z])|>=|≥", r" \\ge "), (r"\\leqslant|\\leq|\\le(?![a-zA-Z])|<=|≤", r" \\le "),
                     (r"\\neq|\\ne(?![a-zA-Z])|!=|≠", r" \\neq "), (r"\\gt(?![a-zA-Z])", ">"), (r"\\lt(?![a-zA-Z])", "<"))
_PERCENT_WORDS_RE = re.compile(r"\s*(?:\\text\{\s*)?(?:percentage|percent|pct)(?:\s*\})?\s*$")
_DECIMAL_COMMA_RE = re.compile(r"^(-?0),(\d+)$")
_BASE_RE = re.compile(r"^([0-9A-Fa-f]+)_\{?(\d{1,2})\}?$")


def strip_degrees_and_money(text: str) -> str:
    """``30^\\circ`` -> ``30``; ``\\$5`` -> ``5``; ``5\\%`` keeps its percent as ``%``.

    >>> strip_degrees_and_money(r"\\$1{,}000 and 90^{\\circ}")
    '1{,}000 and 90'
    """
    text = re.sub(r"\^\s*\{?\s*\\circ\s*\}?(?:\s*[CF]\b)?|°|\\degree", "", text)
    text = text.replace("\\$", "").replace("$", "")
    text = text.replace("\\%", "%").replace("\\percent", "%")
    return text


def strip_units(text: str) -> str:
    """Drop a trailing unit or ``\\text{...}`` word after a numeric answer, twice at most.

    >>> strip_units(r"12\\text{ cm}^2"), strip_units("5 square units"), strip_units("3x")
    ('12', '5', '3x')
    """
    text = re.sub(r"(\\(?:text|mbox|textnormal|mathrm)\s*\{[^{}]*\})\s*\^\s*\{?\d\}?", r"\1", text)
    for _ in range(2):
        match = _UNIT_TAIL_RE.match(text.strip())
        if not match or not re.search(r"\d", match.group("body")):
            break
        text = match.group("body")
    return text.strip()


def fix_thousands(text: str) -> str:
    """Remove thousands separators when the whole answer is one grouped number.

    >>> fix_thousands("7,425,000"), fix_thousands("1 000"), fix_thousands("1,2")
    ('7425000', '1000', '1,2')
    """
    match = _THOUSANDS_RE.match(text.strip())
    if not match:
        return text
    digits = re.sub(r"\{,\}|,|\\,|\\ | |\\!", "", match.group(2))
    return match.group(1).replace("$", "") + digits + (match.group(3) or "")


def fix_mixed_number(text: str) -> str:
    """``2\\frac{1}{2}`` and ``2 1/2`` are mixed numbers (5/2), not products.

    >>> fix_mixed_number(r"2\\frac{1}{2}"), fix_mixed_number("-3 1/4")
    ('(5/2)', '-(13/4)')
    """
    match = _MIXED_RE.match(text.strip())
    if not match:
        return text
    sign, whole = match.group(1), int(match.group(2))
    numerator = int(match.group(3) or match.group(4) or match.group(7))
    denominator = int(match.group(5) or match.group(6) or match.group(8))
    if denominator == 0 or numerator >= denominator:
        return text
    return f"{sign}({whole * denominator + numerator}/{denominator})"


def fix_decimal_comma(text: str) -> str:
    """``0,111`` is a European decimal; ``1,22`` stays a list of two answers (far more common).

    >>> fix_decimal_comma("0,111"), fix_decimal_comma("1,22")
    ('0.111', '1,22')
    """
    match = _DECIMAL_COMMA_RE.match(text.strip())
    return f"{match.group(1)}.{match.group(2)}" if match else text


def fix_base(text: str) -> str:
    """``204_5`` is 204 in base 5 (= 54); digits invalid in that base leave the text alone.

    >>> fix_base("204_5"), fix_base("x_5")
    ('54', 'x_5')
    """
    match = _BASE_RE.match(text.strip())
    if not match or not 2 <= int(match.group(2)) <= 16:
        return text
    try:
        return str(int(match.group(1), int(match.group(2))))
    except ValueError:
        return text


def unwrap_text(text: str) -> str:
    """``\\text{(B)}`` -> ``(B)``; ``\\textbf{yes}`` -> ``yes`` (only when the whole answer is wrapped).

    >>> unwrap_text(r"\\text{Monday}")
    'Monday'
    """
    match = re.fullmatch(r"\\(?:text|textbf|mathrm|mbox|mathbf|textit)\s*\{([^{}]*)\}", text.strip())
    return match.group(1).strip() if match else text


def normalize(text: str) -> str:
    """The clean-up pipeline, in the order the steps depend on each other.

    >>> normalize(r"\\$7{,}425{,}000\\text{ dollars}.")
    '7425000'
    >>> normalize(r"\\left( 1, \\dfrac{1}{2} \\right)")
    '( 1, \\\\frac{1}{2} )'
    """
    text = text.strip().rstrip(".").strip()
    text = re.sub(r"(?<!\\)\\\\(?=[a-zA-Z])", r"\\", text)  # doubly escaped LaTeX: \\frac
    text = re.sub(r",\\!\s*", ",", text).replace("\\!", "")
    text = _PERCENT_WORDS_RE.sub("%", text)
    text = strip_degrees_and_money(text)
    for pattern, replacement in _RELATION_ALIASES:
        text = re.sub(pattern, replacement, text)
    text = re.sub(r"\\(?:left|right|big|Big|bigg|Bigg)(?![a-zA-Z])\s*", "", text)
    text = re.sub(r"\\[dtc]frac", r"\\frac", text)
    text = _SPACE_COMMANDS.sub(" ", text).strip()
    text = strip_units(text)
    text = fix_thousands(text)
    text = fix_decimal_comma(fix_base(text))
    text = fix_mixed_number(text)
    return re.sub(r"\s+", " ", text).strip()
