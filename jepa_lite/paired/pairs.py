"""Paired views for the paper's objective: (Text, Code) pairs, generated or loaded from JSONL.

LLM-JEPA (arXiv 2509.14252) trains on data that comes with two natural views of the same thing: a
description in English (Text) and the program that does it (Code). The kit ships a generator of such
pairs, English descriptions of regular expressions, in the spirit of the NL-RX benchmark the paper
uses, written from a small grammar of our own:

    lines containing exactly 3 digits followed by the word 'dog'   →   .*[0-9]{3}(dog).*
    lines that begin with one or more capital letters              →   [A-Z]+.*

Several English phrasings map to the same regex ("a digit", "a number", "a numeral" → `[0-9]`), so
a model has to learn what the words mean, not just copy them. The split into train and test is by
regex: no regex of the test set is ever seen in training, only its parts.

Your own data goes through `load_jsonl`, in the paper's format, one JSON object per line:

    {"messages": [{"role": "system", "content": ...},
                  {"role": "user", "content": TEXT},
                  {"role": "assistant", "content": CODE}]}
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple


class PairsError(ValueError):
    """A paired-data file that cannot be used; the message names the line and what is wrong."""


@dataclass(frozen=True)
class Pair:
    """One example seen two ways: `text` (the description) and `code` (what it describes)."""

    text: str
    code: str


# ---------------------------------------------------------------------------------------------
# The grammar of the built-in regex pairs
# ---------------------------------------------------------------------------------------------
# A character class: its regex, then ways to say "one of them" (with article), the bare singular
# noun, and the plural noun. Each phrasing list is sampled uniformly.
CLASSES: List[Tuple[str, List[str], List[str], List[str]]] = [
    ("[0-9]", ["a digit", "a number", "a numeral"], ["digit", "number", "numeral"], ["digits", "numbers", "numerals"]),
    (
        "[a-z]",
        ["a lower-case letter", "a lowercase letter", "a small letter"],
        ["lower-case letter", "lowercase letter", "small letter"],
        ["lower-case letters", "lowercase letters", "small letters"],
    ),
    (
        "[A-Z]",
        ["a capital letter", "an upper-case letter", "an uppercase letter"],
        ["capital letter", "upper-case letter", "uppercase letter"],
        ["capital letters", "upper-case letters", "uppercase letters"],
    ),
    (
        "[A-Za-z]",
        ["a letter", "an alphabetic character"],
        ["letter", "alphabetic character"],
        ["letters", "alphabetic characters"],
    ),
    ("[AEIOUaeiou]", ["a vowel"], ["vowel"], ["vowels"]),
    (".", ["any character", "a character"], ["character"], ["characters"]),
]
# Literal words: "the word 'dog'" → (dog)
WORDS = [
    "dog",
    "cat",
    "tree",
    "car",
    "sun",
    "moon",
    "red",
    "blue",
    "apple",
    "river",
    "stone",
    "bird",
    "fish",
    "lamp",
    "road",
    "star",
    "ring",
    "lake",
    "truck",
    "book",
]
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}

# A quantifier: its regex suffix, and phrasings with {a} (article + singular), {s} (bare singular),
# {p} (plural) and {n} (a count). The count-free ones come first.
QUANTIFIERS: List[Tuple[str, List[str]]] = [
    ("", ["{a}"]),
    ("+", ["one or more {p}", "at least one {s}"]),
    ("*", ["zero or more {p}", "any number of {p}"]),
    ("?", ["an optional {s}", "zero or one {s}"]),
    ("{{{n}}}", ["exactly {n} {p}", "{n} {p}"]),
    ("{{{n},}}", ["at least {n} {p}", "{n} or more {p}"]),
]
JOINERS = ["followed by", "then", "and then", "before"]
# Where in the line the pattern sits: the English, and the regex around the expression E.
CONTEXTS: List[Tuple[str, List[str]]] = [
    (".*{e}.*", ["lines containing {e}", "lines that contain {e}", "lines with {e}"]),
    ("{e}.*", ["lines starting with {e}", "lines that begin with {e}"]),
    (".*{e}", ["lines ending with {e}", "lines that end with {e}"]),
    ("{e}", ["lines made of {e}", "lines consisting of only {e}"]),
]


def _unit(rng: random.Random) -> Tuple[str, str]:
    """One quantified element: (English, regex), e.g. ("exactly 3 digits", "[0-9]{3}")."""
    if rng.random() < 0.3:  # a literal word: (dog) takes parentheses so a quantifier applies to all of it
        w = rng.choice(WORDS)
        quoted = f"'{w}'"
        regex = f"({w})"
        a = rng.choice([f"the word {quoted}", f"the string {quoted}"])
        s, p = f"copy of {quoted}", f"copies of {quoted}"
    else:
        regex, articles, singulars, plurals = rng.choice(CLASSES)
        a, s, p = rng.choice(articles), rng.choice(singulars), rng.choice(plurals)
    suffix, phrasings = rng.choice(QUANTIFIERS)
    n = rng.randint(2, 5)
    count = rng.choice([str(n), NUMBER_WORDS[n]])
    english = rng.choice(phrasings).format(a=a, s=s, p=p, n=count)
    return english, regex + suffix.format(n=n)


def sample_regex_pair(rng: random.Random) -> Pair:
    """One (description, regex) pair drawn from the grammar with `rng`."""
    kind = rng.random()
    if kind < 0.35:
        english, regex = _unit(rng)
    elif kind < 0.8:
        (e1, r1), (e2, r2) = _unit(rng), _unit(rng)
        english, regex = f"{e1} {rng.choice(JOINERS)} {e2}", r1 + r2
    else:
        (e1, r1), (e2, r2) = _unit(rng), _unit(rng)
        english, regex = f"either {e1} or {e2}", f"({r1}|{r2})"
    around, phrasings = rng.choice(CONTEXTS)
    return Pair(text=rng.choice(phrasings).format(e=english), code=around.format(e=regex))


def regex_pairs(n_train: int = 3000, n_test: int = 300, seed: int = 0) -> Tuple[List[Pair], List[Pair]]:
    """(train, test) lists of regex pairs, split by regex: no test regex appears in train.

    Draws pairs until both splits are full. Each new regex goes to test with probability
    n_test / (n_train + n_test) while test has room; further descriptions of a regex already placed
    join that regex's split (so train may hold a regex in several phrasings). No (text, code) pair
    repeats. The result depends only on the arguments.
    """
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be ≥ 1; got {n_train} and {n_test}")
    rng = random.Random(seed)
    p_test = n_test / (n_train + n_test)
    split_of: dict = {}
    seen: set = set()
    train: List[Pair] = []
    test: List[Pair] = []
    for _ in range(200 * (n_train + n_test)):
        if len(train) >= n_train and len(test) >= n_test:
            break
        pair = sample_regex_pair(rng)
        if pair in seen:
            continue
        if pair.code not in split_of:
            split_of[pair.code] = (
                "test" if (len(test) < n_test and rng.random() < p_test) or len(train) >= n_train else "train"
            )
        target = test if split_of[pair.code] == "test" else train
        if len(target) < (n_test if target is test else n_train):
            seen.add(pair)
            target.append(pair)
    else:  # pragma: no cover - the grammar has far more pairs than any sensible request
        raise ValueError(f"could not draw {n_train} + {n_test} distinct pairs from the grammar")
    return train, test


# ---------------------------------------------------------------------------------------------
# The paper's JSONL format
# ---------------------------------------------------------------------------------------------
def load_jsonl(path: str | os.PathLike) -> List[Pair]:
    """Pairs from a JSONL file in the paper's chat format (see the module docstring).

    TEXT is the "user" message and CODE the "assistant" message; a "system" message may come first
    and is ignored. Blank lines are skipped. Any other problem raises PairsError naming the file,
    the line number and what is wrong, e.g. `data.jsonl:7: no "assistant" message`.
    """
    p = Path(path)
    if not p.exists():
        raise PairsError(f"data file not found: {p}")
    if not p.is_file():
        raise PairsError(f"data file is not a regular file: {p}")
    try:
        text = p.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors) is not part of the JSON
    except UnicodeDecodeError as e:
        raise PairsError(f"{p} is not valid UTF-8 (byte {e.start}); re-save it as UTF-8 text") from None
    except OSError as e:
        raise PairsError(f"cannot read {p}: {e.strerror or e}") from None
    pairs = []
    # JSONL lines end at "\n" only: str.splitlines() would also cut at U+2028, U+2029, \x85, \x0b, …,
    # which JSON strings may hold raw (save_jsonl writes them so).
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.strip():
            pairs.append(_parse_line(line, f"{p}:{number}"))
    if not pairs:
        raise PairsError(f'{p} holds no examples; expected one JSON object per line with a "messages" list')
    return pairs


def _parse_line(line: str, where: str) -> Pair:
    """One JSONL line → Pair, or PairsError("<file>:<line>: what is wrong")."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise PairsError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise PairsError(
            f'{where}: the JSON is nested too deeply to read; expected an object with a "messages" list'
        ) from None
    if not isinstance(obj, dict) or "messages" not in obj:
        raise PairsError(f'{where}: expected an object with a "messages" list')
    messages = obj["messages"]
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise PairsError(f'{where}: "messages" must be a list of objects with "role" and "content"')
    content = {}
    for m in messages:
        role, text = m.get("role"), m.get("content")
        if role not in ("system", "user", "assistant"):
            raise PairsError(f'{where}: unknown role {role!r}; expected "system", "user" or "assistant"')
        if not isinstance(text, str):
            raise PairsError(f'{where}: the "{role}" message has no text "content"')
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise PairsError(
                f'{where}: the "{role}" message holds an escaped lone surrogate (\\u{ord(text[e.start]):04x}), '
                "which is not text"
            ) from None
        if role in content:
            raise PairsError(f'{where}: more than one "{role}" message; expected one user and one assistant message')
        content[role] = text
    for role in ("user", "assistant"):
        if role not in content:
            raise PairsError(f'{where}: no "{role}" message')
        if not content[role].strip():
            raise PairsError(f'{where}: the "{role}" message is empty')
    return Pair(text=content["user"], code=content["assistant"])


def save_jsonl(
    pairs: Sequence[Pair], path: str | os.PathLike, system: str = "Write a regular expression for the description."
) -> None:
    """Write pairs in the paper's JSONL format (the inverse of `load_jsonl`: any pair of strings
    comes back as it was). What `load_jsonl` would refuse (an empty or blank string) and what UTF-8
    cannot hold (a lone surrogate) is refused with PairsError before anything is written."""
    for i, pair in enumerate(pairs):
        for field in ("text", "code"):
            value = getattr(pair, field)
            if not isinstance(value, str):
                raise PairsError(f"pair {i}: {field} must be a string; got {type(value).__name__}")
            if not value.strip():
                raise PairsError(f"pair {i}: {field} is empty; load_jsonl refuses empty messages")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as e:
                raise PairsError(
                    f"pair {i}: {field} is not valid Unicode (a lone surrogate at position {e.start}); "
                    "it cannot be written as UTF-8"
                ) from None
    from ..writer import atomic_file

    with atomic_file(path, "w", "the JSONL file") as f:  # a temporary name of the kit's own, then a rename
        for pair in pairs:
            messages = [
                {"role": "system", "content": system},
                {"role": "user", "content": pair.text},
                {"role": "assistant", "content": pair.code},
            ]
            f.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")
