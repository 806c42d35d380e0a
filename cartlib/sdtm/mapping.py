"""The mapping file of ``cartlib import-sdtm``: which SDTM domain, variable and code gives each
field of the cohort contract. Read, checked and normalised here; the default ships as
``parameters/sdtm_mapping.yaml`` (docs/SDTM.md describes every key).

>>> m = load_mapping()
>>> m["subjects"]["SEX"]["codes"]
{'M': 'M', 'F': 'F'}
>>> m["adverse_events"]["codes"]["CYTOMEGALOVIRUS INFECTION"]
('INFECTION', 'CMV')
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..params import ParameterError, load_yaml
from ..resources import parameters_file
from ..validate import EVENT_DETAIL, SPEC
from .domains import code_key

__all__ = ["MappingError", "DEFAULT_MAPPING_FILE", "load_mapping", "SUBJECT_FIELDS", "FLAGS"]

DEFAULT_MAPPING_FILE = "sdtm_mapping.yaml"
SUBJECT_FIELDS = tuple(c.name for c in SPEC["subjects"] if c.name != "USUBJID")
"""The subjects columns the mapping must say how to fill (USUBJID is DM.USUBJID)."""
FLAGS = ("before_infusion", "months_before_infusion")
"""``flag`` of a subjects entry: Y/N for a record before the infusion day; months from the date
to the infusion."""
LAB_TESTS = next(c.codes for c in SPEC["labs"] if c.name == "TEST")
AE_TERMS = next(c.codes for c in SPEC["adverse_events"] if c.name == "TERM")

_SELECT = {"domain", "where", "exclude"}
_KEYS = {
    "population": _SELECT,
    "infusion": _SELECT | {"date"},
    "subject": _SELECT | {"variable", "codes", "units", "date", "pick", "flag"},
    "event": _SELECT | {"date", "variable", "codes", "other", "detail"},
    "detail": _SELECT | {"variable", "codes"},
    "adverse_events": _SELECT | {"variable", "codes", "grade", "grades", "date"},
    "medications": _SELECT | {"variable", "codes", "date"},
    "pk": _SELECT | {"date", "value", "text", "blq", "units"},
    "labs": _SELECT | {"variable", "codes", "date", "value", "units"},
}
_REQUIRED = {
    "population": {"domain"}, "infusion": {"domain", "date"}, "subject": {"domain"},
    "event": {"domain", "date"}, "detail": {"domain", "variable", "codes"},
    "adverse_events": {"domain", "variable", "codes", "grade", "grades", "date"},
    "medications": {"domain", "variable", "codes", "date"},
    "pk": {"domain", "date", "value", "text", "blq"},
    "labs": {"domain", "variable", "codes", "date", "value"},
}


class MappingError(ParameterError):
    """The mapping file is not usable; the message names the file and the entry."""


def _text(value, where: str) -> str:
    if isinstance(value, bool) or value is None:
        raise MappingError(f"{where}: {value!r} is not a text; write it in quotes "
                           "(YAML reads yes/no/on/off as true/false and a blank as null)")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return code_key(value)


def _name(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"{where}: must be a variable or domain name, got {value!r}")
    return value.strip().upper()


def _values(value, where: str) -> frozenset[str]:
    items = value if isinstance(value, list) else [value]
    return frozenset(_text(v, where) for v in items)


def _filters(value, where: str) -> dict[str, frozenset[str]]:
    if not isinstance(value, dict) or not value:
        raise MappingError(f"{where}: must be a mapping VARIABLE: [values]")
    return {_name(k, where): _values(v, f"{where}.{k}") for k, v in value.items()}


def _codes(value, where: str, allowed: tuple[str, ...] | None, pair: bool = False) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        raise MappingError(f"{where}: must be a mapping 'value in the data': contract code")
    out = {}
    for key, code in value.items():
        here = f"{where}.{key}"
        if pair and isinstance(code, list):
            if len(code) != 2:
                raise MappingError(f"{here}: must be a code or a list [TERM, DETAIL]")
            target = (_text(code[0], here), _text(code[1], here))
        elif pair:
            target = (_text(code, here), "")
        elif isinstance(code, int) and not isinstance(code, bool):
            target = code
        else:
            target = _text(code, here)
        head = target[0] if isinstance(target, tuple) else target
        if allowed is not None and str(head) not in allowed:
            raise MappingError(f"{here}: {head!r} is not a contract code ({', '.join(allowed)})")
        out[_text(key, here)] = target
    return out


def _units(value, where: str, per_test: bool) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != {"variable", "factors"}:
        raise MappingError(f"{where}: must have exactly the keys variable and factors")

    def factors(table, here):
        if not isinstance(table, dict) or not table:
            raise MappingError(f"{here}: must be a mapping unit: factor")
        bad = [k for k, f in table.items() if isinstance(f, bool) or not isinstance(f, (int, float)) or not f > 0]
        if bad:
            raise MappingError(f"{here}.{bad[0]}: the factor must be a number above 0")
        return {_text(k, here): float(f) for k, f in table.items()}

    table = value["factors"]
    if per_test:
        if not isinstance(table, dict) or not set(table) <= set(LAB_TESTS):
            raise MappingError(f"{where}.factors: must map contract tests ({', '.join(LAB_TESTS)}) to unit: factor")
        table = {test: factors(t, f"{where}.factors.{test}") for test, t in table.items()}
    else:
        table = factors(table, f"{where}.factors")
    return {"variable": _name(value["variable"], f"{where}.variable"), "factors": table}


def _entry(value, kind: str, where: str, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MappingError(f"{where}: must be a mapping of keys ({', '.join(sorted(_KEYS[kind]))})")
    unknown = sorted(set(value) - _KEYS[kind])
    if unknown:
        raise MappingError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS[kind]))})")
    missing = sorted(_REQUIRED[kind] - set(value))
    if missing:
        raise MappingError(f"{where}: key {missing[0]!r} is missing")
    out: dict[str, Any] = {"where": {}, "exclude": {}}
    for key, item in value.items():
        here = f"{where}.{key}"
        if key in ("where", "exclude"):
            out[key] = _filters(item, here)
        elif key == "codes":
            out[key] = _codes(item, here, allowed, pair=kind == "adverse_events")
        elif key == "grades":
            out[key] = _codes(item, here, None)
            if not set(out[key].values()) <= set(range(1, 6)):
                raise MappingError(f"{here}: grades must be whole numbers from 1 to 5")
        elif key in ("other", "blq"):
            out[key] = _values(item, here)
        elif key == "units":
            out[key] = _units(item, here, per_test=kind == "labs")
        elif key == "detail" and not isinstance(item, dict):
            out[key] = _text(item, here)
        elif key == "detail":
            out[key] = _entry(item, "detail", here, allowed)
        elif key == "pick":
            if item not in ("first", "only"):
                raise MappingError(f"{here}: must be first or only")
            out[key] = item
        elif key == "flag":
            if item not in FLAGS:
                raise MappingError(f"{here}: must be one of {', '.join(FLAGS)}")
            out[key] = item
        else:
            out[key] = _name(item, here)
    return out


def _subject(name: str, value, where: str) -> dict[str, Any]:
    col = next(c for c in SPEC["subjects"] if c.name == name)
    entry = _entry(value, "subject", where, col.codes or None)
    if "flag" in entry and "date" not in entry:
        raise MappingError(f"{where}: flag {entry['flag']} needs a date variable")
    if "flag" not in entry and ("variable" in entry) == ("date" in entry):
        raise MappingError(f"{where}: give either a variable or a date (a date gives a study day)")
    entry.setdefault("pick", "only")
    return entry


def _event(name: str, value, where: str) -> dict[str, Any]:
    entry = _entry(value, "event", where, EVENT_DETAIL[name])
    if ("variable" in entry) == ("detail" in entry):
        raise MappingError(f"{where}: give either a variable with codes or a detail")
    if "variable" in entry and "codes" not in entry:
        raise MappingError(f"{where}: key 'codes' is missing")
    if isinstance(entry.get("detail"), str) and entry["detail"] not in EVENT_DETAIL[name]:
        raise MappingError(f"{where}.detail: {entry['detail']!r} is not a code of {name} "
                           f"({', '.join(EVENT_DETAIL[name])})")
    return entry


def load_mapping(path: str | Path | None = None) -> dict[str, Any]:
    """The mapping as checked, normalised dictionaries (names upper case, codes compared by
    :func:`~cartlib.sdtm.domains.code_key`).

    Parameters
    ----------
    path : str or pathlib.Path, optional
        A mapping YAML file; default the packaged ``parameters/sdtm_mapping.yaml``.

    Raises
    ------
    MappingError
        An unknown or missing key, or a value of the wrong kind, naming the entry.

    Examples
    --------
    >>> load_mapping()["infusion"]["date"]
    'EXSTDTC'
    """
    file = Path(path) if path is not None else parameters_file(DEFAULT_MAPPING_FILE)
    raw = load_yaml(file)
    try:
        return _normalise(raw)
    except MappingError as err:
        raise MappingError(f"mapping file {file.name}: {err}") from None


def _normalise(raw: dict) -> dict[str, Any]:
    sections = ("population", "infusion", "subjects", "events", "adverse_events", "medications", "pk", "labs")
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise MappingError(f"unknown section {unknown[0]!r} (known: {', '.join(sections)})")
    missing = [s for s in sections if s not in raw]
    if missing:
        raise MappingError(f"section {missing[0]!r} is missing")
    subjects, events = raw["subjects"], raw["events"]
    if not isinstance(subjects, dict) or set(subjects) != set(SUBJECT_FIELDS):
        absent = [f for f in SUBJECT_FIELDS if not isinstance(subjects, dict) or f not in subjects]
        extra = sorted(set(subjects) - set(SUBJECT_FIELDS)) if isinstance(subjects, dict) else []
        what = f"field {absent[0]} is missing" if absent else f"{extra[0]!r} is not a subjects column"
        raise MappingError(f"subjects: {what} (every one of {', '.join(SUBJECT_FIELDS)} is needed)")
    if not isinstance(events, dict) or not set(events) <= set(EVENT_DETAIL):
        raise MappingError(f"events: the keys must be among {', '.join(EVENT_DETAIL)}")
    return {
        "population": _entry(raw["population"], "population", "population"),
        "infusion": _entry(raw["infusion"], "infusion", "infusion"),
        "subjects": {name: _subject(name, subjects[name], f"subjects.{name}") for name in SUBJECT_FIELDS},
        "events": {name: _event(name, value, f"events.{name}") for name, value in events.items()},
        "adverse_events": _entry(raw["adverse_events"], "adverse_events", "adverse_events", AE_TERMS),
        "medications": _entry(raw["medications"], "medications", "medications"),
        "pk": _entry(raw["pk"], "pk", "pk"),
        "labs": _entry(raw["labs"], "labs", "labs", LAB_TESTS),
    }
