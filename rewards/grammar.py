"""A small recursive-descent grammar from LaTeX or plain math to sympy, that never evaluates text.

Model text is only ever tokenised and turned into sympy objects by explicit constructors
(``Integer``, ``Rational``, ``Symbol``, ``Add``, ``Mul``, ``Pow`` and a fixed table of functions):
there is no ``eval``, ``sympify`` or ``parse_expr`` anywhere, so ``__import__('os')`` is just the
symbols i*m*p*o*r*t... or a parse error. Size guards reject towers such as ``9^{9^{9^9}}`` and huge
factorials before sympy tries to build them, so most pathological inputs fail fast in-process and the
worker timeout is only the last line of defence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy

MAX_DEPTH = 120
"""Nesting deeper than this is not a math answer; also keeps Python's recursion limit far away."""
MAX_POW_BITS = 30_000
"""An exact power whose result would need more bits than this is refused (2^30000 is ~9000 digits)."""
MAX_FACTORIAL = 3_000
MAX_DIGITS = 400


class ParseError(ValueError):
    """The text is not an answer this grammar understands."""


@dataclass(frozen=True)
class Token:
    kind: str  # "num", "name", "cmd", "op", "func"
    text: str
    space_before: bool = False


_TOKEN_RE = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+(?![A-Za-z]))?|\.\d+)"
    r"|(?P<cmd>\\[A-Za-z]+|\\[{}|%,;:! ])"
    r"|(?P<name>[A-Za-z]+)"
    r"|(?P<op>\*\*|[-+*/^_(){}\[\]|!,=<>'%&.]|[≤≥≠π√·×÷−∞°])"
)

FUNCTIONS = {
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "cot": sympy.cot, "sec": sympy.sec,
    "csc": sympy.csc, "arcsin": sympy.asin, "arccos": sympy.acos, "arctan": sympy.atan,
    "sinh": sympy.sinh, "cosh": sympy.cosh, "tanh": sympy.tanh, "exp": sympy.exp, "ln": sympy.log,
    "log": sympy.log, "sqrt": sympy.sqrt, "lg": lambda x: sympy.log(x, 10),
}
GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta",
         "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon",
         "phi", "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi",
         "Sigma", "Phi", "Psi", "Omega"}
IGNORED_COMMANDS = {"\\left", "\\right", "\\big", "\\Big", "\\bigg", "\\Bigg", "\\displaystyle",
                    "\\,", "\\;", "\\:", "\\!", "\\ ", "\\quad", "\\qquad", "\\limits", "\\nolimits"}
WRAPPERS = {"\\text", "\\textbf", "\\mathrm", "\\mathbf", "\\mathit", "\\operatorname", "\\mbox",
            "\\textit", "\\boldsymbol", "\\textnormal", "\\mathnormal", "\\rm", "\\bf"}
UNICODE_OPS = {"≤": "\\le", "≥": "\\ge", "≠": "\\neq", "π": "\\pi", "√": "\\sqrt", "·": "*", "×": "*",
               "÷": "/", "−": "-", "∞": "\\infty"}
CMD_ALIASES = {"\\cdot": "*", "\\times": "*", "\\ast": "*", "\\div": "/", "\\{": "{", "\\}": "}",
               "\\lbrace": "{", "\\rbrace": "}", "\\lvert": "|", "\\rvert": "|", "\\vert": "|",
               "\\|": "|", "\\mid": "|", "\\%": "%", "\\dfrac": "\\frac", "\\tfrac": "\\frac",
               "\\cfrac": "\\frac", "\\dbinom": "\\binom", "\\tbinom": "\\binom", "\\leq": "\\le",
               "\\geq": "\\ge", "\\leqslant": "\\le", "\\geqslant": "\\ge", "\\ne": "\\neq",
               "\\lt": "<", "\\gt": ">", "\\le": "\\le", "\\ge": "\\ge"}


def tokenize(text: str) -> list[Token]:
    """Split text into tokens; any character outside the grammar is a ParseError.

    >>> [t.text for t in tokenize(r"2\\frac{x}{3}")]
    ['2', '\\\\frac', '{', 'x', '}', '{', '3', '}']
    """
    tokens: list[Token] = []
    position, space = 0, False
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if not match:
            raise ParseError(f"unexpected character {text[position]!r}")
        position = match.end()
        kind = match.lastgroup
        value = match.group(0)
        if kind == "space":
            space = True
            continue
        if kind == "num" and len(value) > MAX_DIGITS:
            raise ParseError("number too long")
        value = UNICODE_OPS.get(value, value)
        if kind == "cmd" or value.startswith("\\"):
            value = CMD_ALIASES.get(value, value)
            if value in IGNORED_COMMANDS:
                space = True
                continue
            kind = "cmd" if value.startswith("\\") else "op"
        if kind == "name":
            tokens.extend(_split_name(value, space))
        else:
            tokens.append(Token(kind, value, space))
        space = False
    return tokens


def _split_name(word: str, space: bool) -> list[Token]:
    """A run of letters: a known function or constant name, else single-letter symbols (``xy``)."""
    lower = word.lower()
    if lower in FUNCTIONS or lower in ("pi", "infty", "inf", "oo"):
        return [Token("func" if lower in FUNCTIONS else "cmd", "\\" + lower if lower != "pi" else "\\pi", space)]
    if len(word) > 2:
        raise ParseError(f"unknown word {word[:20]!r} in a math answer")  # "xy" is x*y; "get" is prose
    return [Token("name", char, space and index == 0) for index, char in enumerate(word)]


class ExprParser:
    """Recursive descent over tokens: expr := term (('+'|'-') term)*, with implicit multiplication."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    # -- token helpers -------------------------------------------------------------------------
    def peek(self, offset: int = 0) -> Token | None:
        position = self.index + offset
        return self.tokens[position] if position < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise ParseError("unexpected end of answer")
        self.index += 1
        return token

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.text == text and token.kind in ("op", "cmd"):
            self.index += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            found = self.peek()
            raise ParseError(f"expected {text!r}, found {found.text if found else 'end'!r}")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError("nesting too deep")

    # -- grammar -------------------------------------------------------------------------------
    def parse(self) -> sympy.Expr:
        value = self.expr()
        if self.peek() is not None:
            raise ParseError(f"unexpected {self.peek().text!r}")
        return value

    def expr(self) -> sympy.Expr:
        self.enter()
        value = self.term()
        while True:
            if self.accept("+"):
                value = value + self.term()
            elif self.accept("-"):
                value = value - self.term()
            else:
                break
        self.depth -= 1
        return value

    def term(self) -> sympy.Expr:
        value = self.unary()
        while True:
            if self.accept("*"):
                value = value * self.unary()
            elif self.accept("/"):
                value = divide(value, self.unary())
            elif self.starts_atom():
                value = value * self.power()
            else:
                return value

    def unary(self) -> sympy.Expr:
        if self.accept("-"):
            return -self.unary()
        if self.accept("+"):
            return self.unary()
        return self.power()

    def power(self) -> sympy.Expr:
        base = self.postfix()
        if self.accept("^") or self.accept("**"):
            self.enter()
            exponent = self.exponent()
            self.depth -= 1
            return self.postfix_ops(safe_pow(base, exponent))
        return base

    def exponent(self) -> sympy.Expr:
        """A LaTeX exponent: a braced group, or one signed atom with its own exponent (right-assoc)."""
        if self.accept("-"):
            return -self.exponent()
        if self.accept("+"):
            return self.exponent()
        if self.peek() is not None and self.peek().text == "\\circ":
            raise ParseError("degree sign inside an expression")
        return self.power()

    def postfix(self) -> sympy.Expr:
        return self.postfix_ops(self.atom())

    def postfix_ops(self, value: sympy.Expr) -> sympy.Expr:
        while True:
            if self.accept("!"):
                value = safe_factorial(value)
            elif self.peek() is not None and self.peek().text == "%" and self.peek().kind == "op":
                raise ParseError("percent sign inside an expression")
            else:
                return value

    def starts_atom(self) -> bool:
        token = self.peek()
        if token is None:
            return False
        if token.kind in ("num", "name", "func"):
            return True
        if token.kind == "cmd":
            return token.text in ATOM_COMMANDS or token.text[1:] in GREEK or token.text in WRAPPERS
        return token.text in ("(",)

    def atom(self) -> sympy.Expr:
        self.enter()
        token = self.take()
        try:
            if token.kind == "num":
                return number(token.text)
            if token.kind == "name":
                return self.symbol(token.text)
            if token.kind == "func":
                return self.function(token.text[1:] if token.text.startswith("\\") else token.text)
            if token.kind == "cmd":
                return self.command(token.text)
            return self.group(token.text)
        finally:
            self.depth -= 1

    def group(self, opener: str) -> sympy.Expr:
        closers = {"(": ")", "{": "}", "[": "]", "|": "|"}
        if opener not in closers:
            raise ParseError(f"unexpected {opener!r}")
        inner = self.expr()
        self.expect(closers[opener])
        return sympy.Abs(inner) if opener == "|" else inner

    def braced(self) -> sympy.Expr:
        """A LaTeX argument: ``{expr}`` or a single token (``\\frac12``)."""
        if self.accept("{"):
            inner = self.expr()
            self.expect("}")
            return inner
        token = self.take()
        if token.kind == "num":
            return number(token.text[0]) if len(token.text) > 1 and token.text.isdigit() and self._split_digit(token) else number(token.text)
        if token.kind == "name":
            return self.symbol(token.text)
        if token.kind == "cmd":
            return self.command(token.text)
        raise ParseError(f"bad argument {token.text!r}")

    def _split_digit(self, token: Token) -> bool:
        """``\\frac12`` means 1/2: push the rest of the digits back as their own token."""
        self.tokens.insert(self.index, Token("num", token.text[1:]))
        return True

    def symbol(self, name: str) -> sympy.Expr:
        if self.accept("_"):
            subscript = self.take_subscript()
            return sympy.Symbol(f"{name}_{subscript}")
        if name == "e":
            return sympy.E
        if name == "i":
            return sympy.I
        return sympy.Symbol(name)

    def take_subscript(self) -> str:
        if self.accept("{"):
            parts = []
            while not self.accept("}"):
                token = self.take()
                if token.kind not in ("num", "name"):
                    raise ParseError("complex subscript")
                parts.append(token.text)
            return "".join(parts)
        token = self.take()
        if token.kind not in ("num", "name"):
            raise ParseError("bad subscript")
        return token.text

    def function(self, name: str) -> sympy.Expr:
        power = None
        if self.accept("^"):
            power = self.exponent()
        if name == "sqrt":
            return self.sqrt()
        if name in ("log", "lg") and self.accept("_"):
            base = self.braced()
            argument = self.function_argument()
            value = sympy.log(argument, base)
        else:
            value = FUNCTIONS[name](self.function_argument())
        return safe_pow(value, power) if power is not None else value

    def function_argument(self) -> sympy.Expr:
        token = self.peek()
        if token is not None and token.text in ("(", "{", "["):
            return self.group(self.take().text)
        return self.power()

    def sqrt(self) -> sympy.Expr:
        index = None
        if self.accept("["):
            index = self.expr()
            self.expect("]")
        radicand = self.braced() if self.peek() and self.peek().text != "(" else self.group(self.take().text)
        if index is None:
            return sympy.sqrt(radicand)
        return safe_pow(radicand, sympy.Integer(1) / index) if index != 0 else _raise("zero root")

    def command(self, name: str) -> sympy.Expr:
        if name == "\\frac":
            numerator = self.braced()
            return divide(numerator, self.braced())
        if name == "\\binom":
            top = self.braced()
            return safe_binomial(top, self.braced())
        if name == "\\sqrt":
            return self.sqrt()
        if name == "\\pi":
            return sympy.pi
        if name in ("\\infty", "\\inf", "\\oo"):
            return sympy.oo
        if name in ("\\lfloor", "\\lceil"):
            inner = self.expr()
            self.expect("\\rfloor" if name == "\\lfloor" else "\\rceil")
            return sympy.floor(inner) if name == "\\lfloor" else sympy.ceiling(inner)
        if name == "\\exp" or name[1:] in FUNCTIONS:
            return self.function(name[1:])
        if name[1:] in GREEK:
            return sympy.Symbol(name[1:])
        if name in WRAPPERS:
            return self.wrapped()
        if name in ("\\langle", "\\lvert"):
            raise ParseError("vector inside an expression")
        raise ParseError(f"unsupported command {name}")

    def wrapped(self) -> sympy.Expr:
        """``\\mathrm{e}``, ``\\text{i}``, ``\\operatorname{lcm}``: the content as math."""
        if not self.accept("{"):
            return self.atom()
        if self.peek() and self.peek().kind == "name" and self.peek(1) and self.peek(1).kind == "name":
            raise ParseError("words inside an expression")
        inner = self.expr()
        self.expect("}")
        return inner


ATOM_COMMANDS = {"\\frac", "\\binom", "\\sqrt", "\\pi", "\\infty", "\\lfloor", "\\lceil", "\\exp"} | {
    "\\" + name for name in FUNCTIONS}


def _raise(message: str):
    raise ParseError(message)


def number(text: str) -> sympy.Rational:
    """A decimal or scientific literal as an exact rational (``0.1`` is 1/10, not a float)."""
    if text.endswith("."):
        text = text[:-1]
    mantissa, _, exponent = text.lower().partition("e")
    if exponent and abs(int(exponent)) > 400:
        raise ParseError("exponent too large")
    value = sympy.Rational(mantissa) if mantissa else sympy.Integer(0)
    return value * sympy.Integer(10) ** int(exponent) if exponent else value


def divide(numerator: sympy.Expr, denominator: sympy.Expr) -> sympy.Expr:
    if denominator == 0:
        raise ParseError("division by zero")
    return numerator / denominator


def _bits(value: sympy.Expr) -> float:
    """Rough size in bits of an exact number; symbols count as small."""
    if isinstance(value, sympy.Rational):
        return max(abs(value.p).bit_length(), abs(value.q).bit_length(), 1)
    if value.is_number:
        magnitude = abs(complex(value.evalf(15))) if value.is_finite is not False else 2
        return max(float(sympy.log(magnitude + 2, 2)), 1.0)
    return 8.0


def safe_pow(base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
    """``base ** exponent``, refusing exact results too large to build (``9^{9^{9^9}}``)."""
    if isinstance(exponent, sympy.Rational) and exponent.q < 1_000:
        if not base.is_number:
            if abs(exponent) > 100_000:
                raise ParseError("power too large")
        elif abs(exponent) > 1 and _bits(base) * float(abs(exponent)) > MAX_POW_BITS and base not in (0, 1, -1):
            raise ParseError("power too large")
    elif exponent.is_number and base.is_number:
        if _bits(exponent) > 64:
            raise ParseError("power too large")
    return sympy.Pow(base, exponent)


def safe_factorial(value: sympy.Expr) -> sympy.Expr:
    if value.is_Integer and (value < 0 or value > MAX_FACTORIAL):
        raise ParseError("factorial out of range")
    if value.is_number and not value.is_Integer:
        raise ParseError("factorial of a non-integer")
    return sympy.factorial(value)


def safe_binomial(top: sympy.Expr, bottom: sympy.Expr) -> sympy.Expr:
    if top.is_Integer and abs(top) > MAX_FACTORIAL:
        raise ParseError("binomial too large")
    return sympy.binomial(top, bottom)


def parse_expression(text: str) -> sympy.Expr:
    """Parse one scalar expression (LaTeX or plain text) into sympy without evaluating any text.

    >>> parse_expression(r"\\frac{1}{2} + 0.25")
    3/4
    >>> parse_expression(r"2\\sqrt{2}x^2")
    2*sqrt(2)*x**2
    >>> parse_expression("9^{9^{9^{9^9}}}")
    Traceback (most recent call last):
    ...
    rewards.grammar.ParseError: power too large
    """
    tokens = tokenize(text)
    if not tokens:
        raise ParseError("empty expression")
    return ExprParser(tokens).parse()
