"""SDTM datasets -> the six tables of the cohort contract, as the mapping says (docs/SDTM.md).

Every problem is collected as a :class:`~cartlib.errors.Violation` naming the dataset file, the
row (record 1 is row 2), the variable and the value (dates masked); the import raises one
:class:`~cartlib.errors.CohortError` listing them all, before anything is written.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import CohortError, Violation
from . import tables
from .domains import Domain, code_key, dates_to_days, find_domain_files, read_domain, shown_value
from .report import Usage

__all__ = ["Conversion"]

DATE_PROBLEMS_SHOWN = 20  # per file and variable; a wrong date format would otherwise give thousands


def _variables(entry: dict[str, Any]) -> set[str]:
    """The variables an entry reads (its filters, value, date, unit, grade, text)."""
    names = set(entry.get("where", {})) | set(entry.get("exclude", {}))
    names |= {entry[k] for k in ("variable", "date", "value", "text", "grade") if k in entry}
    if "units" in entry:
        names.add(entry["units"]["variable"])
    return names | {"USUBJID"}


def _entries(mapping: dict[str, Any]):
    """(where in the mapping, entry) for every entry that names a domain."""
    for key in ("population", "infusion", "adverse_events", "medications", "pk", "labs"):
        yield key, mapping[key]
    for name, entry in mapping["subjects"].items():
        yield f"subjects.{name}", entry
    for name, entry in mapping["events"].items():
        yield f"events.{name}", entry
        if isinstance(entry.get("detail"), dict):
            yield f"events.{name}.detail", entry["detail"]


def _number_text(value: float) -> str:
    # 12 significant digits: a unit factor must not add binary noise (0.12345 % -> 0.0012345)
    value = float(f"{value:.12g}")
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


class Conversion:
    """One import: reads the domains the mapping names, then builds each contract table.

    Use :func:`cartlib.sdtm.import_sdtm`; attributes after :meth:`run`: ``tables`` (the six
    tables as text) and ``usage`` (:class:`~cartlib.sdtm.report.Usage`).
    """

    def __init__(self, folder: Path, mapping: dict[str, Any]):
        self.folder, self.mapping = folder, mapping
        self.out: list[Violation] = []
        self.domains: dict[str, Domain] = {}

    # -- reading --------------------------------------------------------------------------
    def read(self) -> None:
        needed: dict[str, dict[str, str]] = {}
        for where, entry in _entries(self.mapping):
            for variable in sorted(_variables(entry)):
                needed.setdefault(entry["domain"], {}).setdefault(variable, where)
        files = find_domain_files(self.folder)
        for name in needed:
            found = files.get(name, [])
            if len(found) != 1:
                why = (f"no file {name.lower()}.xpt or {name.lower()}.sas7bdat in the SDTM folder" if not found else
                       f"files {' and '.join(p.name for p in found)} both hold domain {name}; keep only one")
                self.out.append(Violation(name, None, None, None, why))
                continue
            domain = read_domain(name, found[0], self.out)
            if domain is None:
                continue
            for variable, where in needed[name].items():
                if not domain.has(variable):
                    self.out.append(Violation(domain.file, None, variable, None,
                                              f"the file has no variable {variable}, which the mapping needs ({where})"))
            self.domains[name] = domain
        if self.out:
            raise CohortError(self.out)

    # -- selection ------------------------------------------------------------------------
    def run(self) -> None:
        self.read()
        self.usage = Usage(self.domains)
        self.active = {name: self._not_done(d) for name, d in self.domains.items()}
        self.subjects = self._population()
        self.infusion = self._infusion()
        self.tables = {name: build(self) for name, build in tables.BUILDERS.items()}
        if self.out:
            raise CohortError(self.out)

    def _not_done(self, domain: Domain) -> pd.Series:
        stat = f"{domain.name}STAT"
        keep = pd.Series(True, index=domain.data.index)
        if domain.has(stat):
            keep = domain.data[stat].map(code_key).ne("NOT DONE")
            self.usage.drop(domain.name, domain.data.index[~keep], f"not done ({stat} NOT DONE)")
        return keep

    def _filtered(self, domain: Domain, entry: dict, rows: pd.Series) -> pd.Series:
        for variable, values in entry["where"].items():
            rows = rows & domain.data[variable].map(code_key).isin(values)
        for variable, values in entry["exclude"].items():
            hit = rows & domain.data[variable].map(code_key).isin(values)
            for value in sorted(set(domain.data.loc[hit, variable].map(code_key))):
                at = hit & domain.data[variable].map(code_key).eq(value)
                self.usage.drop(domain.name, domain.data.index[at],
                                f"excluded by the mapping: {variable} {shown_value(value)}")
            rows = rows & ~hit
        return rows

    def select(self, entry: dict) -> pd.DataFrame:
        """The records of the entry's domain that pass its filters, of subjects in the cohort."""
        domain = self.domains[entry["domain"]]
        return domain.data[self._filtered(domain, entry, self.active[domain.name])]

    def _population(self) -> dict[str, int]:
        """USUBJID -> its row in the population domain; records of other subjects are dropped,
        and a USUBJID found nowhere in the population domain is an error."""
        entry = self.mapping["population"]
        domain = self.domains[entry["domain"]]
        ids = domain.data["USUBJID"]
        for row in ids.index[ids.eq("")]:
            self.out.append(Violation(domain.file, int(row), "USUBJID", "", "the subject identifier is blank"))
        for row in ids.index[ids.duplicated() & ids.ne("")]:
            self.out.append(Violation(domain.file, int(row), "USUBJID", ids[row], "a second record of this subject"))
        keep = self._filtered(domain, entry, self.active[domain.name]) & ids.ne("")
        self.usage.use(domain.name, ids.index[keep])
        subjects = {ids[row]: int(row) for row in sorted(ids.index[keep], key=lambda r: ids[r])}
        known = set(ids)
        for name, other in self.domains.items():
            if name == domain.name:
                continue
            others = other.data["USUBJID"]
            outside = ~others.isin(subjects)
            self.usage.drop(name, others.index[outside & others.isin(known)],
                            f"subject not in the cohort (excluded from {domain.name})")
            for value in pd.unique(others[outside & ~others.isin(known)]):
                rows = others.index[others.eq(value)]
                count = f" ({len(rows)} rows)" if len(rows) > 1 else ""
                self.out.append(Violation(other.file, int(rows[0]), "USUBJID", value,
                                          f"subject not in {domain.file}{count}"))
            self.active[name] = self.active[name] & ~outside
        return subjects

    def ordinals(self, entry: dict, rows: pd.DataFrame) -> pd.Series:
        """The entry's date of each row as a day number (NaN where unreadable, each reported)."""
        domain = self.domains[entry["domain"]]
        variable = entry["date"]
        ordinals, problems = dates_to_days(rows[variable])
        for n, (row, why) in enumerate(sorted(problems.items())):
            if n == DATE_PROBLEMS_SHOWN:
                self.out.append(Violation(domain.file, row, variable, None,
                                          f"this and {len(problems) - n - 1} later rows also hold dates that "
                                          f"cannot be read (only the first {n} are listed)"))
                break
            self.out.append(Violation(domain.file, row, variable, shown_value(rows.at[row, variable], is_date=True),
                                      f"{why} (the value is shown masked: digits #, letters X)"))
        return ordinals

    def days(self, entry: dict, rows: pd.DataFrame) -> pd.Series:
        """The entry's date of each row as a study day: days since the subject's infusion date."""
        return self.ordinals(entry, rows) - rows["USUBJID"].map(self.infusion).astype(float)

    def _infusion(self) -> dict[str, float]:
        entry = self.mapping["infusion"]
        rows = self.select(entry)
        ordinals = self.ordinals(entry, rows).dropna()
        first = ordinals.groupby(rows.loc[ordinals.index, "USUBJID"]).idxmin()
        self.usage.use(entry["domain"], first.to_numpy())
        self.usage.drop(entry["domain"], rows.index.difference(first.to_numpy()),
                        "a later infusion record (day 0 is the first)")
        population = self.domains[self.mapping["population"]["domain"]]
        what = " and ".join(f"{v} {' or '.join(sorted(s))}" for v, s in entry["where"].items())
        for usubjid, row in list(self.subjects.items()):
            if usubjid not in first.index:
                self.out.append(Violation(population.file, row, "USUBJID", usubjid,
                                          f"no infusion date: no {self.domains[entry['domain']].file} record"
                                          f"{' with ' + what if what else ''} and a readable {entry['date']}"))
                del self.subjects[usubjid]  # still an error; the other subjects are checked on
        for name, domain in self.domains.items():
            self.active[name] = self.active[name] & domain.data["USUBJID"].isin(self.subjects)
        return {usubjid: ordinals[row] for usubjid, row in first.items()}

    # -- codes and numbers ----------------------------------------------------------------
    def coded(self, entry: dict, rows: pd.DataFrame, variable: str, codes: dict, also=frozenset(),
              what: str = "codes") -> pd.Series:
        """Each row's value mapped through ``codes`` (None where the value is in ``also``); a value
        in neither is one error per distinct value."""
        domain = self.domains[entry["domain"]]
        keys = rows[variable].map(code_key)
        for value in sorted(set(keys) - set(codes) - set(also)):
            at = rows.index[keys.eq(value)]
            count = f" ({len(at)} rows)" if len(at) > 1 else ""
            known = ", ".join(list(codes) + sorted(also))
            self.out.append(Violation(domain.file, int(at[0]), variable, shown_value(rows.at[at[0], variable]),
                                      f"not one of the mapping's {what} ({known}){count}"))
        return keys.map(lambda k: codes.get(k))

    def numbers(self, entry: dict, rows: pd.DataFrame, variable: str, factors=None) -> pd.Series:
        """Each row's number as contract text, converted by its unit's factor; errors for a value
        that is not a number and for a unit the mapping does not list."""
        domain = self.domains[entry["domain"]]
        texts = rows[variable]
        values = pd.to_numeric(texts, errors="coerce")
        for row in texts.index[values.isna()]:
            self.out.append(Violation(domain.file, int(row), variable, shown_value(texts[row]),
                                      "the value is blank" if texts[row] == "" else "not a number"))
        if "units" not in entry:
            return texts
        unit_var = entry["units"]["variable"]
        if factors is None:
            factors = pd.Series([entry["units"]["factors"]] * len(rows), index=rows.index)
        units = rows[unit_var].map(code_key)
        factor = pd.Series([f.get(u, np.nan) for f, u in zip(factors, units)], index=rows.index)
        for (unit, table) in sorted({(u, tuple(f)) for f, u, x in zip(factors, units, factor) if np.isnan(x)}):
            at = rows.index[units.eq(unit) & factor.isna()]
            self.out.append(Violation(domain.file, int(at[0]), unit_var, shown_value(rows.at[at[0], unit_var]),
                                      f"not one of the mapping's units ({', '.join(table)})"
                                      f"{f' ({len(at)} rows)' if len(at) > 1 else ''}"))
        return pd.Series([t if f == 1 else (_number_text(v * f) if np.isfinite(v * f) else t)
                          for t, v, f in zip(texts, values, factor)], index=rows.index, dtype=object)
