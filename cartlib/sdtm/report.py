"""What an SDTM import did with each record: used, or dropped and why; the mapping report.

The report holds counts, domain and variable names and coded values (a value that looks like a
date is masked), never a date.
"""
from __future__ import annotations

from collections import Counter

from .domains import Domain, shown_value

__all__ = ["Usage", "KEY_SUFFIXES", "render_report"]

KEY_SUFFIXES = ("TESTCD", "DECOD", "TRT", "CAT")
"""A record no mapping entry selects is counted under the first of ``<domain><suffix>`` (or
QNAM of a supplemental domain) its dataset has, e.g. ``LBTESTCD HGB``."""


class Usage:
    """Per domain, the rows used by the import and the rows dropped with a reason. A row used by
    any entry counts as used, whatever another entry thought of it.

    >>> import pandas as pd
    >>> d = Domain("LB", "lb.xpt", pd.DataFrame({"LBTESTCD": ["IL6", "HGB"]}, index=[2, 3]))
    >>> u = Usage({"LB": d})
    >>> u.use("LB", [2])
    >>> u.summary()["LB"]
    {'file': 'lb.xpt', 'read': 2, 'used': 1, 'dropped': {'not selected by the mapping: LBTESTCD HGB': 1}}
    """

    def __init__(self, domains: dict[str, Domain]):
        self.domains = domains
        self.used = {name: set() for name in domains}
        self.dropped: dict[str, dict[int, str]] = {name: {} for name in domains}

    def use(self, domain: str, rows) -> None:
        self.used[domain].update(int(r) for r in rows)

    def drop(self, domain: str, rows, reason: str) -> None:
        """Record why rows were left out (the first reason given for a row is kept)."""
        for row in rows:
            self.dropped[domain].setdefault(int(row), reason)

    def _unselected(self, domain: Domain, row: int) -> str:
        names = [f"{domain.name}{s}" for s in KEY_SUFFIXES] + ["QNAM"]
        key = next((n for n in names if domain.has(n)), None)
        if key is None:
            return "not selected by the mapping"
        return f"not selected by the mapping: {key} {shown_value(domain.data.at[row, key]) or '(blank)'}"

    def summary(self) -> dict[str, dict]:
        """Per domain: file, records read, used, and dropped counted by reason (most first)."""
        out = {}
        for name, domain in self.domains.items():
            reasons = Counter()
            for row in domain.data.index:
                if row not in self.used[name]:
                    reasons[self.dropped[name].get(row) or self._unselected(domain, row)] += 1
            out[name] = {"file": domain.file, "read": len(domain.data), "used": len(self.used[name]),
                         "dropped": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))}
        return out


def render_report(summary: dict[str, dict], counts: dict[str, int], source: str) -> str:
    """The mapping report as text: the tables written, then per domain records read, used and
    dropped (and why).

    >>> print(render_report({"DM": {"file": "dm.xpt", "read": 3, "used": 2,
    ...                             "dropped": {"excluded by the population: ARMCD SCRNFAIL": 1}}},
    ...                     {"subjects": 2}, "sdtm"))
    SDTM import of sdtm
    <BLANKLINE>
    Written (rows): subjects 2
    <BLANKLINE>
    domain  file    read  used  dropped
    DM      dm.xpt     3     2        1
        1  excluded by the population: ARMCD SCRNFAIL
    <BLANKLINE>
    """
    lines = [f"SDTM import of {source}", "",
             "Written (rows): " + ", ".join(f"{table} {n}" for table, n in counts.items()), ""]
    width = max([len(s["file"]) for s in summary.values()] + [4])
    lines.append(f"{'domain':<7} {'file':<{width}} {'read':>5} {'used':>5} {'dropped':>8}")
    for name, s in summary.items():
        dropped = sum(s["dropped"].values())
        lines.append(f"{name:<7} {s['file']:<{width}} {s['read']:>5} {s['used']:>5} {dropped:>8}")
        lines += [f"    {n}  {reason}" for reason, n in s["dropped"].items()]
    return "\n".join(lines) + "\n"
