"""linregex: ECMA-262 patterns on RE2, linear time, and a one-line reason for what it refuses."""

from __future__ import annotations

import random
import time

import pytest

from synapse_nb import budget
from synapse_nb.linregex import UnsupportedPattern, compile_pattern, refusal


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        ("^(a+)+$", "a" * 40 + "!", False),
        ("^(a+)+$", "a" * 40, True),
        (r"^\s$", "\u00a0", True),  # ECMA's \s includes no-break space; RE2's does not
        (r"^\S$", "\u2028", False),
        (r"^[\S]$", "x", True),
        ("^.$", "\u2028", False),  # "." stops at every line terminator
        ("^.$", "\U0001f600", True),  # and matches a whole code point
        ("^x$", "x\n", False),  # "$" is the end of the text, not before a final newline as in Python
        ("[^]", "\n", True),
        ("[]", "x", False),
        ("[[:alpha:]]", "a", False),  # a class of "[:alph" then "]" in ECMA, not a POSIX class
        ("[[:alpha:]]", ":]", True),
        (r"^\u00e9\u{1F600}$", "\u00e9\U0001f600", True),
        (r"^\uD83D\uDE00$", "\U0001f600", True),
        (r"^\cJ$", "\n", True),
        (r"^[\b]$", "\b", True),
        (r"^\d+$", "\u0663", False),  # ASCII digits only, as in ECMA
        ("(?<year>[0-9]{4})-", "2024-", True),
        (r"\p{Script=Greek}", "\u03b1", True),
        ("a", "\ud800a", True),  # a lone surrogate in the text does not stop the search
    ],
)
def test_patterns_follow_ecma_262(pattern: str, text: str, found: bool) -> None:
    assert compile_pattern(pattern).search(text) is found


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("^(?=a)", "does not support: lookahead `(?=`; rewrite it without lookaround"),
        ("x(?!a)", "negative lookahead `(?!`"),
        ("(?<=a)b", "lookbehind `(?<=`"),
        ("(?<!a)b", "negative lookbehind `(?<!`"),
        (r"(a)\1", r"backreference `\1`; rewrite it without backreferences"),
        (r"(?<n>a)\k<n>", r"named backreference `\k<`"),
        ("a{1001}", "repeats more than 1000 times"),
        ("(", "not a valid regular expression for the linear-time engine: missing )"),
        ("\\", "ends with a lone backslash"),
        (r"\ud800", "lone surrogate"),
    ],
)
def test_refused_constructs_are_named_in_one_line(pattern: str, reason: str) -> None:
    why = refusal(pattern)
    assert why is not None
    assert "\n" not in why
    assert reason in why
    with pytest.raises(UnsupportedPattern):
        compile_pattern(pattern)


def test_a_pattern_must_be_a_string() -> None:
    assert refusal(["a"]) == "a pattern must be a string, got list"


def test_a_long_search_stops_waiting_at_the_deadline() -> None:
    regex = compile_pattern("(a|b)*a(a|b){200}c")  # defeats RE2's DFA: about a second per MiB
    rng = random.Random(1)
    text = "".join(rng.choice("ab") for _ in range(1 << 20))
    deadline = time.monotonic() + 0.05
    with pytest.raises(budget.DeadlineExceeded):
        budget.within(deadline, regex.search, text)
    assert time.monotonic() - deadline < 0.5


def test_a_long_search_without_a_deadline_gives_its_answer() -> None:
    assert compile_pattern("^[ab]*$").search("ab" * (1 << 20)) is True
