"""The one exception for bad cohort input, and the record of one violation."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Violation:
    """One broken rule: where it is (table, spreadsheet row, column), the value, the rule.

    ``row`` is 1-based as in a spreadsheet (header = row 1, first data row = row 2);
    ``None`` when the rule concerns a whole table or file.

    >>> str(Violation("subjects", 3, "AGE", "-1", "must be between 0 and 30"))
    "subjects, row 3, column AGE, value '-1': must be between 0 and 30"
    """

    table: str
    row: int | None
    column: str | None
    value: str | None
    rule: str

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
