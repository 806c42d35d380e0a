"""Each contract table built from the selected SDTM records (one function per table).

The functions take the running :class:`~cartlib.sdtm.convert.Conversion` (its ``select``,
``days``, ``coded`` and ``numbers`` report every problem) and return the table as text, rows
in a fixed order: by USUBJID, then day, then code.
"""
from __future__ import annotations

import pandas as pd

from ..errors import Violation
from ..validate import SPEC
from .domains import code_key, shown_value

__all__ = ["BUILDERS", "one_per_subject"]

DAYS_PER_MONTH = 30.4375


def _frame(table: str, columns: dict[str, list], order: list[str]) -> pd.DataFrame:
    names = [c.name for c in SPEC[table]]
    frame = pd.DataFrame({name: columns.get(name, []) for name in names}, columns=names, dtype=object)
    if frame.empty:
        return frame
    keys = frame[order].copy()
    for column in order:  # days sort as numbers
        numbers = pd.to_numeric(keys[column], errors="coerce")
        if numbers.notna().all():
            keys[column] = numbers
    ordered = keys.sort_values(order, kind="stable").index
    return frame.loc[ordered].reset_index(drop=True)


def _dated(conv, entry: dict, rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The rows with a readable date and their study days (unreadable dates are reported)."""
    days = conv.days(entry, rows).dropna()
    return rows.loc[days.index], days


def _filters_text(entry: dict) -> str:
    what = " and ".join(f"{v} {' or '.join(sorted(s))}" for v, s in entry["where"].items())
    return f" with {what}" if what else ""


def one_per_subject(conv, what: str, entry: dict, rows: pd.DataFrame, subjects, order=None) -> pd.Series:
    """USUBJID -> its one row among ``rows`` (the earliest by ``order`` when ``pick: first``);
    a subject of ``subjects`` without a row, or with two under ``pick: only``, is an error."""
    domain = conv.domains[entry["domain"]]
    population = conv.domains[conv.mapping["population"]["domain"]]
    if order is not None:
        rows = rows.assign(_ORDER=order).sort_values(["_ORDER"], kind="stable")
    chosen = {}
    by_subject = rows.groupby("USUBJID", sort=False).groups
    for usubjid in subjects:
        found = list(by_subject.get(usubjid, []))
        if not found:
            conv.out.append(Violation(population.file, conv.subjects[usubjid], "USUBJID", usubjid,
                                      f"no {domain.file} record{_filters_text(entry)} for {what}"))
            continue
        if len(found) > 1 and entry.get("pick", "only") == "only":
            conv.out.append(Violation(domain.file, int(found[1]), "USUBJID", usubjid,
                                      f"a second record for {what} of this subject (the first is row {found[0]}); "
                                      "the mapping needs one (or pick: first)"))
        chosen[usubjid] = int(found[0])
        conv.usage.drop(entry["domain"], found[1:], f"a later record for {what} (the first is used)")
    conv.usage.use(entry["domain"], chosen.values())
    return pd.Series(chosen, dtype=object)


def subject_value(conv, name: str, entry: dict) -> dict[str, str]:
    """The text of one subjects column for every subject."""
    rows, days = conv.select(entry), None
    if "date" in entry:
        rows, days = _dated(conv, entry, rows)
    if entry.get("flag") == "before_infusion":
        before = rows.index[days < 0]
        conv.usage.use(entry["domain"], before)
        has = set(rows.loc[before, "USUBJID"])
        return {usubjid: "Y" if usubjid in has else "N" for usubjid in conv.subjects}
    chosen = one_per_subject(conv, name, entry, rows, conv.subjects, order=days)
    picked = rows.loc[chosen.to_numpy(dtype=int)] if len(chosen) else rows.iloc[:0]
    if entry.get("flag") == "months_before_infusion":
        domain = conv.domains[entry["domain"]]
        for row in picked.index[days[picked.index] > 0]:
            conv.out.append(Violation(domain.file, int(row), entry["date"], "(masked)",
                                      f"the date of {name} is after the infusion day"))
        values = (-days[picked.index] / DAYS_PER_MONTH).round(1).map(lambda m: f"{m:.1f}")
    elif "date" in entry:
        values = days[picked.index].map(lambda d: str(int(d)))
    elif "codes" in entry:
        values = conv.coded(entry, picked, entry["variable"], entry["codes"])
    else:
        values = conv.numbers(entry, picked, entry["variable"])
    by_subject = dict(zip(picked["USUBJID"], values))
    return {usubjid: by_subject.get(usubjid) or "" for usubjid in conv.subjects}


def subject_table(conv) -> pd.DataFrame:
    columns = {"USUBJID": list(conv.subjects)}
    for name, entry in conv.mapping["subjects"].items():
        values = subject_value(conv, name, entry)
        columns[name] = [values[usubjid] for usubjid in conv.subjects]
    return _frame("subjects", columns, ["USUBJID"])


def _event_detail(conv, name: str, entry: dict, rows: pd.DataFrame) -> pd.Series:
    detail = entry["detail"]
    if isinstance(detail, str):
        return pd.Series(detail, index=rows.index, dtype=object)
    records = conv.select(detail)
    chosen = one_per_subject(conv, f"the DETAIL of {name}", detail, records, list(rows["USUBJID"]))
    picked = records.loc[chosen.to_numpy(dtype=int)] if len(chosen) else records.iloc[:0]
    codes = dict(zip(picked["USUBJID"], conv.coded(detail, picked, detail["variable"], detail["codes"])))
    return rows["USUBJID"].map(codes)


def event_table(conv) -> pd.DataFrame:
    columns: dict[str, list] = {"USUBJID": [], "EVENT": [], "DAY": [], "DETAIL": []}
    for name, entry in conv.mapping["events"].items():
        domain = entry["domain"]
        rows, days = _dated(conv, entry, conv.select(entry))
        conv.usage.drop(domain, rows.index[days < 0], "before the infusion day (events are counted from day 0)")
        rows, days = rows[days >= 0], days[days >= 0]
        if "variable" in entry:
            codes = conv.coded(entry, rows, entry["variable"], entry["codes"], entry.get("other", frozenset()),
                               what=f"{name} codes or other values")
            keys = rows[entry["variable"]].map(code_key)
            for value in sorted(set(keys[codes.isna()])):
                conv.usage.drop(domain, rows.index[codes.isna() & keys.eq(value)],
                                f"{entry['variable']} {shown_value(value)}: not a {name}")
            rows, days = rows[codes.notna()], days[codes.notna()]
        order = days.sort_values(kind="stable").index
        rows, days = rows.loc[order], days.loc[order]
        later = rows["USUBJID"].duplicated()
        if name == "DEATH":
            file = conv.domains[domain].file
            for row in rows.index[later]:
                conv.out.append(Violation(file, int(row), "USUBJID", rows.at[row, "USUBJID"],
                                          "a second DEATH record of this subject"))
        conv.usage.drop(domain, rows.index[later], f"a later {name} record (the contract keeps the first)")
        rows, days = rows[~later], days[~later]
        conv.usage.use(domain, rows.index)
        detail = (_event_detail(conv, name, entry, rows) if "detail" in entry else
                  conv.coded(entry, rows, entry["variable"], entry["codes"], entry.get("other", frozenset())))
        columns["USUBJID"] += list(rows["USUBJID"])
        columns["EVENT"] += [name] * len(rows)
        columns["DAY"] += [str(int(d)) for d in days]
        columns["DETAIL"] += [d or "" for d in detail]
    return _frame("events", columns, ["USUBJID", "DAY", "EVENT"])


def _mapped(conv, entry: dict) -> pd.DataFrame:
    """The records whose ``variable`` is one of the entry's codes; the others are dropped and
    counted by value."""
    rows = conv.select(entry)
    variable = entry["variable"]
    keys = rows[variable].map(code_key)
    listed = keys.isin(entry["codes"])
    for value in sorted(set(keys[~listed])):
        conv.usage.drop(entry["domain"], rows.index[keys.eq(value)], f"{variable} not in the mapping: {shown_value(value) or '(blank)'}")
    return rows[listed]


def adverse_event_table(conv) -> pd.DataFrame:
    entry = conv.mapping["adverse_events"]
    rows, days = _dated(conv, entry, _mapped(conv, entry))
    term = conv.coded(entry, rows, entry["variable"], entry["codes"])
    grade = conv.coded(entry, rows, entry["grade"], entry["grades"], what="grades")
    conv.usage.use(entry["domain"], rows.index)
    return _frame("adverse_events", {
        "USUBJID": list(rows["USUBJID"]), "TERM": [t[0] for t in term], "DETAIL": [t[1] for t in term],
        "GRADE": [str(g) if g is not None else "" for g in grade], "ONSET_DAY": [str(int(d)) for d in days],
    }, ["USUBJID", "TERM", "ONSET_DAY"])


def medication_table(conv) -> pd.DataFrame:
    entry = conv.mapping["medications"]
    rows, days = _dated(conv, entry, _mapped(conv, entry))
    conv.usage.use(entry["domain"], rows.index)
    return _frame("medications", {
        "USUBJID": list(rows["USUBJID"]), "DRUG": list(conv.coded(entry, rows, entry["variable"], entry["codes"])),
        "START_DAY": [str(int(d)) for d in days]}, ["USUBJID", "DRUG", "START_DAY"])


def pk_table(conv) -> pd.DataFrame:
    entry = conv.mapping["pk"]
    rows, days = _dated(conv, entry, conv.select(entry))
    blank = rows[entry["value"]].eq("")
    blq = conv.coded(entry, rows[blank], entry["text"], {code: "BLQ" for code in entry["blq"]},
                     what=f"texts of a result below the LLOQ (with {entry['value']} blank)")
    conc = pd.concat([blq, conv.numbers(entry, rows[~blank], entry["value"])]).reindex(rows.index)
    conv.usage.use(entry["domain"], rows.index)
    return _frame("pk", {"USUBJID": list(rows["USUBJID"]), "DAY": [str(int(d)) for d in days],
                         "CONC": [c or "" for c in conc]}, ["USUBJID", "DAY"])


def lab_table(conv) -> pd.DataFrame:
    entry = conv.mapping["labs"]
    rows, days = _dated(conv, entry, _mapped(conv, entry))
    test = conv.coded(entry, rows, entry["variable"], entry["codes"])
    factors = None
    if "units" in entry:
        factors = test.map(lambda t: entry["units"]["factors"].get(t, {}))
    value = conv.numbers(entry, rows, entry["value"], factors)
    conv.usage.use(entry["domain"], rows.index)
    return _frame("labs", {"USUBJID": list(rows["USUBJID"]), "DAY": [str(int(d)) for d in days],
                           "TEST": list(test), "VALUE": list(value)}, ["USUBJID", "TEST", "DAY"])


BUILDERS = {"subjects": subject_table, "events": event_table, "adverse_events": adverse_event_table,
            "medications": medication_table, "pk": pk_table, "labs": lab_table}
"""Contract table -> the function that builds it from a running conversion."""
