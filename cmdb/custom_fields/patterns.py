"""Validation patterns of text custom fields: which an admin may define, and how they run.

Values are matched with RE2 (google-re2), whose time is linear in the text: no pattern can make a
write backtrack for seconds, whatever it is. A definition's pattern must still pass this rule, so
that it means the same wherever it is reused (a client's or browser's backtracking engine):

- at most ``MAX_PATTERN`` characters, and RE2 must compile it;
- no backreferences (``\\1``, ``(?P=name)``, ``\\k<name>``) and no lookaround (RE2 has neither);
- no nested quantifiers where either is unbounded: a repeated group that contains a repeat
  (``(a+)+``, ``(\\w*)*``, ``(x{2,})+``) or an alternation (``(a|aa)*``) is refused. Bounded
  repeats inside bounded ones (``(?:[0-9]{1,3}\\.){3}``) are fine.

The whole text must match (the pattern is anchored at both ends).
"""

from __future__ import annotations

import re

import re2

MAX_PATTERN = 200

_BACKREFERENCE = re.compile(r"\\[1-9]|\\k<|\\g<|\(\?P=|\(\?<?[=!]")
# A quantifier: * + ? or {m}, {m,}, {m,n} (an escaped character before it is consumed separately).
_QUANTIFIER = re.compile(r"(\*|\+|\?|\{\d+(?:,\d*)?\})")


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is refused, or None when it is acceptable."""
    if len(pattern) > MAX_PATTERN:
        return f"At most {MAX_PATTERN} characters."
    if _BACKREFERENCE.search(pattern):
        return "Backreferences and lookaround are not supported."
    try:
        re.compile(pattern)
        re2.compile(pattern)
    except (re.error, re2.error) as exc:
        return f"Not a valid pattern: {exc}."
    if _nested_unbounded(pattern):
        return (
            "A repeated group that repeats or alternates inside (such as (a+)+ or (a|aa)*) could backtrack "
            "for seconds: bound one of the repeats."
        )
    return None


def compile_pattern(pattern: str):
    """The RE2 program of an accepted pattern, matched against the whole text."""
    return re2.compile(f"(?:{pattern})")


def _nested_unbounded(pattern: str) -> bool:
    """Whether a quantified group contains a quantifier or an alternation, either unbounded."""
    # Each open group: [has a repeat inside, an unbounded one, an alternation].
    stack: list[list[bool]] = []
    i, n = 0, len(pattern)
    inner = None  # what the group just closed held
    while i < n:
        char = pattern[i]
        if char == "\\":
            i += 2
            inner = None
            continue
        if char == "[":  # a character class: skip to its end
            i = _class_end(pattern, i)
            inner = None
            continue
        if char == "(":
            stack.append([False, False, False])
            i += 1
            if pattern.startswith("?", i):  # (?:...), (?i), (?P<name>...)
                i += 1
            inner = None
            continue
        if char == ")":
            inner = stack.pop() if stack else None
            i += 1
            match = _QUANTIFIER.match(pattern, i)
            if match and inner is not None:
                unbounded = _unbounded(match.group(1))
                repeats = _repeats(match.group(1))
                if repeats and (inner[0] or inner[2]) and (unbounded or inner[1]):
                    return True
                if stack and repeats:
                    stack[-1][0] = True
                    stack[-1][1] = stack[-1][1] or unbounded or inner[1]
                i = match.end()
            if stack and inner is not None:
                stack[-1][0] = stack[-1][0] or inner[0]
                stack[-1][1] = stack[-1][1] or inner[1]
            inner = None
            continue
        if char == "|":
            if stack:
                stack[-1][2] = True
            i += 1
            continue
        match = _QUANTIFIER.match(pattern, i)
        if match:
            if stack and _repeats(match.group(1)):
                stack[-1][0] = True
                stack[-1][1] = stack[-1][1] or _unbounded(match.group(1))
            i = match.end()
            continue
        i += 1
    return False


def _repeats(quantifier: str) -> bool:
    """More than once (``?`` and ``{0,1}`` don't repeat)."""
    if quantifier == "?":
        return False
    if quantifier.startswith("{"):
        numbers = quantifier[1:-1].split(",")
        high = numbers[-1] if len(numbers) > 1 else numbers[0]
        return high == "" or int(high) > 1
    return True


def _unbounded(quantifier: str) -> bool:
    return quantifier in ("*", "+") or quantifier.endswith(",}")


def _class_end(pattern: str, start: int) -> int:
    i = start + 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1
