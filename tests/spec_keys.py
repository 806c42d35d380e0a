"""The results.json keys documented in docs/RESULTS.md, read from the document itself.

docs/RESULTS.md is the one reference of the keys: its key tables (first header cell ``key``)
hold key patterns in backticks, where ``{NAME}`` stands for each value of a placeholder of
the ``placeholder`` table and ``{a,b}`` for each alternative. The tests compare the code
with these expansions, so the document and the code cannot drift apart unnoticed.

>>> expand("efficacy.{lfs,os}.uni.{COV}.{hr,p}", {"COV": ["female"]})
['efficacy.lfs.uni.female.hr', 'efficacy.lfs.uni.female.p', 'efficacy.os.uni.female.hr', 'efficacy.os.uni.female.p']
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

RESULTS_DOC = Path(__file__).resolve().parents[1] / "docs" / "RESULTS.md"
SECTIONS = ("cohort", "efficacy", "toxicity", "pk", "bca", "transplant")

_CODE = re.compile(r"`([^`]*)`")
_INNERMOST_GROUP = re.compile(r"\{([^{}]*)\}")
_PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$")


def markdown_tables(text: str, first_header: str) -> list[list[list[str]]]:
    """The body rows (lists of stripped cells) of every table whose first header cell is
    ``first_header`` (compared without backticks and case)."""
    tables, lines = [], text.splitlines()
    for i, line in enumerate(lines[:-1]):
        if not (line.startswith("|") and re.match(r"^\|[\s:|-]+\|$", lines[i + 1].strip())):
            continue
        header = [c.strip().strip("`").lower() for c in line.strip().strip("|").split("|")]
        if header[0] != first_header.lower():
            continue
        rows = []
        for body in lines[i + 2:]:
            if not body.startswith("|"):
                break
            rows.append([c.strip() for c in body.strip().strip("|").split("|")])
        tables.append(rows)
    return tables


def expand(pattern: str, placeholders: dict[str, list[str]]) -> list[str]:
    """Every key a pattern stands for, in order (innermost braces first)."""
    match = _INNERMOST_GROUP.search(pattern)
    if match is None:
        return [pattern]
    inside = match.group(1)
    if _PLACEHOLDER.match(inside):
        if inside not in placeholders:
            raise KeyError(f"placeholder {{{inside}}} is used in {pattern!r} but not defined")
        options = placeholders[inside]
    else:
        options = inside.split(",")
    out = []
    for option in options:
        out += expand(pattern[:match.start()] + option + pattern[match.end():], placeholders)
    return out


@dataclass(frozen=True)
class DocumentedKey:
    """One backticked key pattern of a key table row, and whether the row is marked core."""

    pattern: str
    core: bool


def _text() -> str:
    return RESULTS_DOC.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def placeholders() -> dict[str, list[str]]:
    """Placeholder name -> its value patterns, from the ``placeholder`` table."""
    out = {}
    for rows in markdown_tables(_text(), "placeholder"):
        for cells in rows:
            out[_CODE.findall(cells[0])[0]] = _CODE.findall(cells[1])
    return out


@lru_cache(maxsize=1)
def documented_patterns() -> tuple[DocumentedKey, ...]:
    """Every key pattern of every key table, in document order."""
    out = []
    for rows in markdown_tables(_text(), "key"):
        for cells in rows:
            core = cells[-1] == "✓"
            out += [DocumentedKey(p, core) for p in _CODE.findall(cells[0])]
    return tuple(out)


def documented_keys() -> list[str]:
    """Every documented key, expanded, sorted (default parameters)."""
    names = placeholders()
    return sorted({k for d in documented_patterns() for k in expand(d.pattern, names)})


def spec_keys() -> list[str]:
    """The core keys (marked ✓), expanded, sorted: present in every run, valued on the bundled cohort."""
    names = placeholders()
    return sorted({k for d in documented_patterns() if d.core for k in expand(d.pattern, names)})
