"""The one exception for bad cohort input, the record of one violation, and how messages
write values and limits."""
from __future__ import annotations

import re
from dataclasses import dataclass

MESSAGE_VALUE_CHARS = 60
"""Values (and column names) longer than this are cut in messages, ``…`` marking the cut."""


def format_number(x: float) -> str:
    """A limit as messages write it: ``36525`` -> ``'36,525'``, ``1e12`` -> ``'1e12'``, ``0.5`` -> ``'0.5'``.

    >>> format_number(36525), format_number(1e12), format_number(1e9), format_number(1e-5), format_number(-365.0)
    ('36,525', '1e12', '1e9', '1e-5', '-365')
    """
    if isinstance(x, int) or (float(x).is_integer() and abs(x) < 1e7):
        return f"{int(x):,}"
    return re.sub(r"e\+?(-?)0*(\d)", r"e\1\2", f"{x:g}")


@dataclass(frozen=True, order=True)
class Violation:
    """One broken rule: where it is (table, spreadsheet row, column), the value, the rule.

    ``row`` is 1-based as in a spreadsheet (header = row 1, first data row = row 2);
    ``None`` when the rule concerns a whole table or file.

    >>> str(Violation("subjects", 3, "AGE", "-1", "must be between 0 and 30"))
    "subjects, row 3, column AGE, value '-1': must be between 0 and 30"
    >>> len(Violation("labs", 2, "NOTE", "x" * 5000, "too long").value)
    61
    """

    table: str
    row: int | None
    column: str | None
    value: str | None
    rule: str

    def __post_init__(self):
        # A message never carries a huge value (cut at MESSAGE_VALUE_CHARS) nor text that cannot
        # be printed (undecodable file-name bytes are escaped).
        for name in ("table", "column", "value", "rule"):
            text = getattr(self, name)
            if text is None:
                continue
            if name in ("column", "value") and len(text) > MESSAGE_VALUE_CHARS:
                text = text[:MESSAGE_VALUE_CHARS] + "…"
            if not text.isascii():
                text = text.encode("utf-8", "backslashreplace").decode("utf-8")
            object.__setattr__(self, name, text)

    def __str__(self) -> str:
        parts = [self.table]
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column is not None:
            parts.append(f"column {self.column}")
        if self.value is not None:
            parts.append(f"value {self.value!r}")
        return ", ".join(parts) + f": {self.rule}"


class CohortError(ValueError):
    """Raised when a cohort breaks the data contract; lists every violation at once.

    >>> err = CohortError([Violation("subjects", None, None, None, "file is missing")])
    >>> print(err)
    The cohort breaks the data contract (1 problem):
      - subjects: file is missing
    """

    def __init__(self, violations: list[Violation]):
        self.violations = sorted(set(violations), key=_sort_key)
        n = len(self.violations)
        lines = [f"The cohort breaks the data contract ({n} problem{'s' if n != 1 else ''}):"]
        lines += [f"  - {v}" for v in self.violations]
        super().__init__("\n".join(lines))


def _sort_key(v: Violation):
    return (v.table, v.row if v.row is not None else 0, v.column or "", v.rule, v.value or "")
