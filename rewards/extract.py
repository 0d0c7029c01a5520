"""Pull the final answer text out of a model completion.

Priority follows what graders in Qwen2.5-Math, DeepScaleR and Math-Verify do: the last ``\\boxed{}``
(or ``\\fbox{}``) wins, then ``<answer>`` tags, then "the answer is" / "Answer:", then markdown bold,
then (optionally) the last number. Everything here is plain string scanning with linear-time regexes,
so it is safe to run on arbitrary model text in the parent process.
"""

from __future__ import annotations

import re

MAX_ANSWER_CHARS = 2000
"""Answers longer than this are not answers; the cap also bounds parser work downstream."""

MAX_COMPLETION_CHARS = 100_000
"""Only the last 100,000 characters of a completion (about 25,000 tokens) are searched for the answer.

Extraction runs in the trainer's process, outside the pool's timeout; linear scans of a megabyte
still took seconds on a loaded machine (the fuzz run), so the work is bounded by this window."""

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*")
_ANSWER_TAG_RE = re.compile(r"<answer>((?:(?!<answer>).)*?)</answer>", re.DOTALL | re.IGNORECASE)
"""Content may not hold another ``<answer>``: each opening tag then scans only to the next one, so a
megabyte of unclosed tags costs linear time, not quadratic (found by the fuzz run)."""
_ANSWER_IS_RE = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|:|=)\s*:?\s*", re.IGNORECASE)
_BOLD_RE = re.compile(r"\*\*([^*\n]{1,200})\*\*")
_NUMBER_RE = re.compile(
    r"(?<![A-Za-z\d.])(?:-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:/\d+)?|-?\.\d+)(?![A-Za-z\d])")
_MATH_SPAN_RE = re.compile(
    r"\$\$(.+?)\$\$|(?<!\\)\$((?:\\\$|[^$\n])+?)(?<!\\)\$|\\\(((?:(?!\\\()[^\n])+?)\\\)"
    r"|\\\[((?:(?!\\\[).)+?)\\\]", re.DOTALL)
"""``$$..$$``, ``$..$``, ``\\(..\\)``, ``\\[..\\]``. A ``\\(`` or ``\\[`` span may not contain another opener of
its kind, so unclosed openers each scan only to the next one (linear time on adversarial text)."""
_TOKEN_RE = re.compile(r"[^\s$]+")
_BRACE_TOKEN_RE = re.compile(r"\\.|[{}]", re.DOTALL)
_NON_SPACE_RE = re.compile(r"\S")
_CONNECTOR_RE = re.compile(r"^[\s,;.$]*(?:\\quad|\\qquad|\\text\{[^{}]{0,30}\}|\\\)|\\\(|and|or|,|;|\s)*[\s,;$]*$")


def closing_braces(text: str) -> dict[int, int]:
    """Map each ``{`` that is closed to the index of its ``}``, in one pass (backslash escapes skipped).

    One stack pass instead of a scan per box: a megabyte of unclosed ``\\boxed{``
    would otherwise cost quadratic time in the trainer's process (found by the fuzz run).

    >>> closing_braces("{a{b}c}{")
    {2: 4, 0: 6}
    """
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for token in _BRACE_TOKEN_RE.finditer(text):
        if token.group() == "{":
            stack.append(token.start())
        elif token.group() == "}" and stack:
            pairs[stack.pop()] = token.start()
    return pairs


def boxed_spans(text: str) -> list[tuple[int, int, int, int]]:
    """``(start, end, content start, content end)`` of every complete ``\\boxed{...}`` / ``\\fbox{...}``
    (and ``\\boxed 5``). Content is sliced only for the boxes used, so nested boxes cost linear memory.
    """
    spans = []
    pairs: dict[int, int] | None = None
    for match in _BOX_RE.finditer(text):
        start = match.end()
        if start < len(text) and text[start] == "{":
            pairs = closing_braces(text) if pairs is None else pairs
            if start in pairs:
                spans.append((match.start(), pairs[start] + 1, start + 1, pairs[start]))
        elif match.group(0)[-1:].isspace():
            token = _TOKEN_RE.match(text, start)
            if token:
                spans.append((match.start(), token.end(), start, token.end()))
    return spans


def last_boxed(text: str) -> str | None:
    """Content of the last complete box; boxes joined only by "and", commas or ``\\quad`` form a list.

    A box nested in the previous one is not a list item: the innermost last box is the answer.

    >>> last_boxed(r"so \\boxed{1} or rather \\boxed{\\frac{1}{2}}.")
    '\\\\frac{1}{2}'
    >>> last_boxed(r"\\boxed{1} \\quad \\text{and} \\quad \\boxed{2}")
    '1, 2'
    >>> last_boxed(r"\\boxed{x = \\boxed{5}}")
    '5'
    """
    spans = [span for span in boxed_spans(text) if _NON_SPACE_RE.search(text, span[2], span[3])]
    if not spans:
        return None
    group = [spans[-1]]  # built last box first, so each step is O(1) even for 10^5 boxes
    for previous in reversed(spans[:-1]):
        if previous[1] > group[-1][0]:
            break  # nested: the outer box contains the group
        between = text[previous[1]:group[-1][0]]
        if len(between) > 60 or not _CONNECTOR_RE.match(between):
            break
        group.append(previous)
    return ", ".join(text[span[2]:span[3]].strip() for span in reversed(group))


def strip_math_delimiters(answer: str) -> str:
    """Remove surrounding ``$``, ``\\(\\)``, ``\\[\\]`` and a trailing period or comma.

    >>> strip_math_delimiters(r"$\\frac{1}{2}$.")
    '\\\\frac{1}{2}'
    """
    answer = answer.strip()
    for _ in range(3):
        answer = answer.rstrip(" .,;:").strip()
        for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if answer.startswith(left) and answer.endswith(right) and len(answer) >= len(left) + len(right):
                answer = answer[len(left):len(answer) - len(right)].strip()
    return answer


def answer_phrase_line(text: str) -> tuple[int, str] | None:
    """``(position, rest of line)`` after the last "the answer is" / "Answer:" phrase, or None."""
    matches = list(_ANSWER_IS_RE.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end():]
    line = rest.split("\n", 1)[0].strip()
    if not line and rest.strip():
        line = rest.strip().split("\n", 1)[0]
    return matches[-1].start(), line


def phrase_candidates(line: str) -> list[str]:
    """Readings of an answer line, best first: a leading math span, the sentence, the last number.

    >>> phrase_candidates("$42$. Done")
    ['42']
    >>> phrase_candidates("The largest $n$ is 34.")
    ['The largest $n$ is 34', '34']
    """
    span = _MATH_SPAN_RE.search(line)
    if span and span.start() < 3:
        return [next(group for group in span.groups() if group is not None).strip()]
    sentence = re.split(r"\.\s+(?=[A-Z<])|\.$", line, maxsplit=1)[0]
    candidates = [strip_math_delimiters(sentence)]
    spans = [next(g for g in m.groups() if g is not None) for m in _MATH_SPAN_RE.finditer(sentence)]
    candidates += [strip_math_delimiters(s) for s in reversed(spans) if re.search(r"\d", s)]
    number = last_number(sentence)
    if number:
        candidates.append(number)
    return [c for c in dict.fromkeys(candidates) if c]


def after_answer_phrase(text: str) -> str | None:
    """The answer following the last "the answer is" / "Answer:" phrase, up to the end of its line.

    >>> after_answer_phrase("Thus, the final answer is $42$. Done")
    '42'
    """
    found = answer_phrase_line(text)
    if found is None:
        return None
    candidates = phrase_candidates(found[1])
    return candidates[0] if candidates else None


def last_math_span(text: str) -> str | None:
    """Content of the last ``$...$``, ``$$...$$``, ``\\(...\\)`` or ``\\[...\\]`` span."""
    spans = [next(g for g in m.groups() if g is not None) for m in _MATH_SPAN_RE.finditer(text)]
    spans = [s.strip() for s in spans if s.strip()]
    return spans[-1] if spans else None


def last_bold(text: str) -> str | None:
    """The last markdown bold span, e.g. ``**42**``.

    >>> last_bold("We get **x = 3** and so **3**.")
    '3'
    """
    matches = _BOLD_RE.findall(text)
    return strip_math_delimiters(matches[-1]) if matches else None


def last_number(text: str) -> str | None:
    """The last number in the text (integer, decimal, ``a/b`` or with thousands separators).

    >>> last_number("3 apples and 7,425 pears cost 1.5 dollars each")
    '1.5'
    """
    matches = _NUMBER_RE.findall(text)
    return matches[-1] if matches else None


def looks_bare(text: str) -> bool:
    """True for short one-line text that is the answer itself: math with no prose, or a few words.

    >>> looks_bare(r"\\frac{3}{4}"), looks_bare("no solution"), looks_bare("Solving, we get x = 5.")
    (True, True, False)
    """
    stripped = text.strip()
    if not stripped or len(stripped) > 120 or "\n" in stripped:
        return False
    if re.fullmatch(r"[A-Za-z][A-Za-z'\- ]*\.?", stripped):
        return len(stripped.split()) <= 3
    prose = re.sub(r"\\[A-Za-z]+(?:\{[^{}]*\})?", " ", stripped)  # commands and their first argument
    return not re.search(r"[A-Za-z]{3,}", prose)


def answer_candidates(text: str, number_fallback: bool = True) -> list[str]:
    """Readings of the final answer, best first; the verifier takes the first one that parses.

    Only the latest marker counts: a box, or an "answer is" phrase written after the last box.
    Without any marker: the last math span, bold text, the whole text when it is short, the last
    number (``number_fallback``). Only the last ``MAX_COMPLETION_CHARS`` characters are read.

    >>> answer_candidates(r"We get \\boxed{255}. Final Answer: The final answer is $10,455$.")
    ['10,455']
    """
    text = text[-MAX_COMPLETION_CHARS:]
    boxes = boxed_spans(text)
    phrase = answer_phrase_line(text)
    if phrase is not None and (not boxes or phrase[0] > boxes[-1][0]) and not _BOX_RE.search(phrase[1]):
        found = phrase_candidates(phrase[1])
        if found:
            return _clean(found)
    for finder in (last_boxed, _last_answer_tag):
        found = finder(text)
        if found is not None and found.strip():
            return _clean([found])
    candidates = [found for found in (last_math_span(text), last_bold(text)) if found]
    if looks_bare(text):
        return _clean(candidates + [text])  # the text is the answer: no number fishing
    if number_fallback:
        number = last_number(text)
        if number:
            candidates.append(number)
    return _clean(candidates)


def _clean(candidates: list[str]) -> list[str]:
    cleaned = (_cap(strip_math_delimiters(candidate)) for candidate in candidates)
    return list(dict.fromkeys(candidate for candidate in cleaned if candidate))


def extract_answer(text: str, number_fallback: bool = True) -> str | None:
    """The first reading of the final answer of a completion or bare answer, or None.

    >>> extract_answer(r"... so the total is \\boxed{7,425,000}.")
    '7,425,000'
    >>> extract_answer("<answer> 12 </answer>")
    '12'
    >>> extract_answer("I could not solve it.") is None
    True
    """
    candidates = answer_candidates(text, number_fallback)
    return candidates[0] if candidates else None


def _last_answer_tag(text: str) -> str | None:
    """Content of the last ``<answer>...</answer>`` pair (boxed inside it is handled first)."""
    matches = _ANSWER_TAG_RE.findall(text)
    return matches[-1].strip() if matches else None


def _cap(answer: str) -> str | None:
    return answer if answer and len(answer) <= MAX_ANSWER_CHARS else (answer[:MAX_ANSWER_CHARS] or None)
