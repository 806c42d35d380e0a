"""A cohort (the tables of :func:`cartlib.synth.generate_cohort`) written as SDTM datasets.

The datasets are SAS transport files (version 5, as regulatory submissions use) named as the
default mapping expects; every code is the first data value the mapping turns into the
contract's code, so importing the export with the default mapping gives the cohort back.
Calendar dates are made from study days: subject ``i`` (0-based, in table order) is infused
on the reference date plus ``7 * i`` days, the reference date being 1 January 2018 plus
``seed mod 1461`` days, a fixed date per seed. Records the contract has no place for are added
as a study would hold them (lymphodepletion in EX, informed consent in DS) and are dropped
again by the import, which its mapping report shows.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from .mapping import load_mapping

__all__ = ["write_sdtm", "reference_date", "STUDYID"]

STUDYID = "CARTLIB-SYNTH"
DAYS_PER_MONTH = 30.4375
LYMPHODEPLETION = (("FLUDARABINE", 30.0, -5), ("CYCLOPHOSPHAMIDE", 500.0, -5))  # drug, mg/m2, day


COLUMNS = {
    "DM": ["USUBJID", "SUBJID", "RFSTDTC", "RFXSTDTC", "RFPENDTC", "DTHDTC", "DTHFL", "AGE", "AGEU", "SEX",
           "ARMCD", "ARM"],
    "SUPPDM": ["USUBJID", "IDVAR", "IDVARVAL", "QNAM", "QLABEL", "QVAL", "QORIG"],
    "EX": ["USUBJID", "EXTRT", "EXDOSE", "EXDOSU", "EXSTDTC", "EXENDTC"],
    "MH": ["USUBJID", "MHTERM", "MHDECOD", "MHCAT", "MHSTDTC"],
    "PR": ["USUBJID", "PRTRT", "PRDECOD", "PRSTDTC"],
    "AE": ["USUBJID", "AETERM", "AEDECOD", "AETOXGR", "AESTDTC"],
    "CM": ["USUBJID", "CMTRT", "CMDECOD", "CMSTDTC"],
    "PC": ["USUBJID", "PCTESTCD", "PCTEST", "PCORRES", "PCORRESU", "PCSTRESC", "PCSTRESN", "PCSTRESU", "PCDTC"],
    "LB": ["USUBJID", "LBTESTCD", "LBORRES", "LBORRESU", "LBSTRESC", "LBSTRESN", "LBSTRESU", "VISIT", "LBDTC"],
    "RS": ["USUBJID", "RSTESTCD", "RSTEST", "RSORRES", "RSSTRESC", "VISIT", "RSDTC"],
    "DS": ["USUBJID", "DSTERM", "DSDECOD", "DSCAT", "DSSTDTC"],
    "DD": ["USUBJID", "DDTESTCD", "DDTEST", "DDORRES", "DDSTRESC"],
}
"""The variables of each domain written (STUDYID, DOMAIN and --SEQ are added in front)."""


def reference_date(seed: int) -> dt.date:
    """The first infusion date of the export of seed ``seed``.

    >>> reference_date(0), reference_date(1461)
    (datetime.date(2018, 1, 1), datetime.date(2018, 1, 1))
    """
    return dt.date(2018, 1, 1) + dt.timedelta(days=int(seed) % 1461)


def _code_for(codes: dict, target) -> str:
    """The first data value the mapping turns into ``target``."""
    for value, code in codes.items():
        if code == target:
            return value
    raise ValueError(f"the mapping has no SDTM value for the contract code {target!r}")


def _only(values: frozenset) -> str:
    return sorted(values)[0]


class _Writer:
    def __init__(self, tables: dict[str, pd.DataFrame], seed: int, mapping: dict):
        self.t, self.m = tables, mapping
        ids = list(tables["subjects"]["USUBJID"])
        start = reference_date(seed)
        self.infusion = {u: start + dt.timedelta(days=7 * i) for i, u in enumerate(ids)}

    def date(self, usubjid: str, day) -> str:
        return (self.infusion[usubjid] + dt.timedelta(days=int(day))).isoformat()

    @staticmethod
    def frame(domain: str, rows: list[dict]) -> pd.DataFrame:
        frame = pd.DataFrame(rows, columns=COLUMNS[domain])
        for name in frame.columns:  # a domain without records still has typed variables
            if frame[name].dtype == object or not len(frame):
                frame[name] = frame[name].astype(float if name.endswith(("STRESN", "DOSE")) or name == "AGE" else object)
        frame.insert(0, "STUDYID", STUDYID)
        frame.insert(1, "DOMAIN" if domain[:4] != "SUPP" else "RDOMAIN", domain if domain[:4] != "SUPP" else "DM")
        seq = f"{domain}SEQ"
        if domain not in ("DM", "SUPPDM"):
            frame.insert(3, seq, frame.groupby("USUBJID").cumcount().astype(float) + 1)
        return frame

    def dm(self) -> pd.DataFrame:
        s, m = self.t["subjects"], self.m["subjects"]
        deaths = self.t["events"].query("EVENT == 'DEATH'").set_index("USUBJID")["DAY"]
        rows = []
        for r in s.itertuples(index=False):
            died = r.USUBJID in deaths.index
            rows.append({"USUBJID": r.USUBJID, "SUBJID": r.USUBJID.split("-")[-1],
                         "RFSTDTC": self.date(r.USUBJID, 0), "RFXSTDTC": self.date(r.USUBJID, 0),
                         "RFPENDTC": self.date(r.USUBJID, r.LAST_CONTACT_DAY),
                         "DTHDTC": self.date(r.USUBJID, deaths[r.USUBJID]) if died else "",
                         "DTHFL": "Y" if died else "", "AGE": float(r.AGE), "AGEU": _only(set(m["AGE"]["units"]["factors"])),
                         "SEX": _code_for(m["SEX"]["codes"], r.SEX), "ARMCD": "CART", "ARM": "CD19 CAR-T"})
        return self.frame("DM", rows)

    def suppdm(self) -> pd.DataFrame:
        rows = []
        for r in self.t["subjects"].itertuples(index=False):
            for name in ("INDICATION", "GENRISK"):
                entry = self.m["subjects"][name]
                rows.append({"USUBJID": r.USUBJID, "IDVAR": "", "IDVARVAL": "", "QNAM": _only(entry["where"]["QNAM"]),
                             "QLABEL": name.title(), "QVAL": _code_for(entry["codes"], getattr(r, name)), "QORIG": "CRF"})
        return self.frame("SUPPDM", rows)

    def ex(self) -> pd.DataFrame:
        dose = self.m["subjects"]["DOSE"]
        unit = _code_for(dose["units"]["factors"], 1.0)
        product = _only(self.m["infusion"]["where"]["EXTRT"])
        rows = []
        for r in self.t["subjects"].itertuples(index=False):
            for drug, amount, day in LYMPHODEPLETION:
                rows.append({"USUBJID": r.USUBJID, "EXTRT": drug, "EXDOSE": amount, "EXDOSU": "MG/M2",
                             "EXSTDTC": self.date(r.USUBJID, day), "EXENDTC": self.date(r.USUBJID, day + 2)})
            rows.append({"USUBJID": r.USUBJID, "EXTRT": product, "EXDOSE": float(r.DOSE), "EXDOSU": unit,
                         "EXSTDTC": self.date(r.USUBJID, 0), "EXENDTC": self.date(r.USUBJID, 0)})
        return self.frame("EX", rows)

    def mh(self) -> pd.DataFrame:
        category = _only(self.m["subjects"]["DX_TO_INF_MO"]["where"]["MHCAT"])
        rows = [{"USUBJID": r.USUBJID, "MHTERM": "B-CELL ACUTE LYMPHOBLASTIC LEUKAEMIA",
                 "MHDECOD": "B-CELL TYPE ACUTE LEUKAEMIA", "MHCAT": category,
                 "MHSTDTC": self.date(r.USUBJID, -round(r.DX_TO_INF_MO * DAYS_PER_MONTH))}
                for r in self.t["subjects"].itertuples(index=False)]
        return self.frame("MH", rows)

    def pr(self) -> pd.DataFrame:
        hsct = _only(self.m["subjects"]["PRIOR_HSCT"]["where"]["PRDECOD"])
        cart = _only(self.m["subjects"]["PRIOR_CART"]["where"]["PRDECOD"])
        rows = []
        for r in self.t["subjects"].itertuples(index=False):
            dx_days = round(r.DX_TO_INF_MO * DAYS_PER_MONTH)
            for flag, term, share in ((r.PRIOR_HSCT, hsct, 2), (r.PRIOR_CART, cart, 3)):
                if flag == "Y":  # some day between diagnosis and infusion
                    rows.append({"USUBJID": r.USUBJID, "PRTRT": term, "PRDECOD": term,
                                 "PRSTDTC": self.date(r.USUBJID, -max(1, dx_days // share))})
        for r in self.t["events"].query("EVENT == 'HSCT'").itertuples(index=False):
            rows.append({"USUBJID": r.USUBJID, "PRTRT": hsct, "PRDECOD": hsct, "PRSTDTC": self.date(r.USUBJID, r.DAY)})
        return self.frame("PR", rows)

    def ae(self) -> pd.DataFrame:
        entry = self.m["adverse_events"]
        rows = []
        for r in self.t["adverse_events"].itertuples(index=False):
            term = _code_for(entry["codes"], (r.TERM, r.DETAIL or ""))
            rows.append({"USUBJID": r.USUBJID, "AETERM": term, "AEDECOD": term,
                         "AETOXGR": _code_for(entry["grades"], int(r.GRADE)), "AESTDTC": self.date(r.USUBJID, r.ONSET_DAY)})
        return self.frame("AE", rows)

    def cm(self) -> pd.DataFrame:
        codes = self.m["medications"]["codes"]
        rows = [{"USUBJID": r.USUBJID, "CMTRT": _code_for(codes, r.DRUG), "CMDECOD": _code_for(codes, r.DRUG),
                 "CMSTDTC": self.date(r.USUBJID, r.START_DAY)} for r in self.t["medications"].itertuples(index=False)]
        return self.frame("CM", rows)

    def pc(self) -> pd.DataFrame:
        entry = self.m["pk"]
        unit, blq = _code_for(entry["units"]["factors"], 1.0), _only(entry["blq"])
        rows = []
        for r in self.t["pk"].itertuples(index=False):
            is_blq = isinstance(r.CONC, str)
            rows.append({"USUBJID": r.USUBJID, "PCTESTCD": _only(entry["where"]["PCTESTCD"]),
                         "PCTEST": "CD19 CAR Transgene", "PCORRES": blq if is_blq else str(r.CONC), "PCORRESU": unit,
                         "PCSTRESC": blq if is_blq else str(r.CONC), "PCSTRESN": np.nan if is_blq else float(r.CONC),
                         "PCSTRESU": unit, "PCDTC": self.date(r.USUBJID, r.DAY)})
        return self.frame("PC", rows)

    def lb(self) -> pd.DataFrame:
        entry, subjects = self.m["labs"], self.m["subjects"]
        rows = []

        def add(usubjid, testcd, value, text, unit, day, visit=""):
            rows.append({"USUBJID": usubjid, "LBTESTCD": testcd, "LBORRES": text, "LBORRESU": unit,
                         "LBSTRESC": text, "LBSTRESN": value, "LBSTRESU": unit, "VISIT": visit,
                         "LBDTC": self.date(usubjid, day)})
        for r in self.t["labs"].itertuples(index=False):
            unit = _code_for(entry["units"]["factors"][r.TEST], 1.0)
            add(r.USUBJID, _code_for(entry["codes"], r.TEST), float(r.VALUE), f"{r.VALUE:g}", unit, r.DAY)
        for name, day in (("MRD_PRELD", -7), ("MRD_POSTLD", -1)):
            mrd = subjects[name]
            unit, factor = next(iter(mrd["units"]["factors"].items()))
            for r in self.t["subjects"].itertuples(index=False):
                value = getattr(r, name) / factor
                add(r.USUBJID, _only(mrd["where"]["LBTESTCD"]), value, f"{value:.12g}", unit, day,
                    _only(mrd["where"]["VISIT"]))
        neg = subjects["D28_MRD_NEG"]
        for r in self.t["subjects"].itertuples(index=False):
            add(r.USUBJID, _only(neg["where"]["LBTESTCD"]), np.nan, _code_for(neg["codes"], r.D28_MRD_NEG), "", 28,
                _only(neg["where"]["VISIT"]))
        return self.frame("LB", rows)

    def rs(self) -> pd.DataFrame:
        d28, relapse = self.m["subjects"]["D28_RESPONSE"], self.m["events"]["RELAPSE"]
        rows = [{"USUBJID": r.USUBJID, "RSTESTCD": _only(d28["where"]["RSTESTCD"]), "RSTEST": "Overall Response",
                 "RSORRES": _code_for(d28["codes"], r.D28_RESPONSE), "RSSTRESC": _code_for(d28["codes"], r.D28_RESPONSE),
                 "VISIT": _only(d28["where"]["VISIT"]), "RSDTC": self.date(r.USUBJID, 28)}
                for r in self.t["subjects"].itertuples(index=False)]
        for r in self.t["events"].query("EVENT == 'RELAPSE'").itertuples(index=False):
            code = _code_for(relapse["codes"], r.DETAIL)
            rows.append({"USUBJID": r.USUBJID, "RSTESTCD": _only(relapse["where"]["RSTESTCD"]),
                         "RSTEST": "Overall Response", "RSORRES": code, "RSSTRESC": code, "VISIT": "",
                         "RSDTC": self.date(r.USUBJID, r.DAY)})
        return self.frame("RS", rows)

    def ds(self) -> pd.DataFrame:
        death = _only(self.m["events"]["DEATH"]["where"]["DSDECOD"])
        rows = [{"USUBJID": u, "DSTERM": "INFORMED CONSENT OBTAINED", "DSDECOD": "INFORMED CONSENT OBTAINED",
                 "DSCAT": "PROTOCOL MILESTONE", "DSSTDTC": self.date(u, -30)} for u in self.infusion]
        rows += [{"USUBJID": r.USUBJID, "DSTERM": death, "DSDECOD": death, "DSCAT": "DISPOSITION EVENT",
                  "DSSTDTC": self.date(r.USUBJID, r.DAY)} for r in self.t["events"].query("EVENT == 'DEATH'").itertuples()]
        return self.frame("DS", rows)

    def dd(self) -> pd.DataFrame:
        detail = self.m["events"]["DEATH"]["detail"]
        rows = [{"USUBJID": r.USUBJID, "DDTESTCD": _only(detail["where"]["DDTESTCD"]), "DDTEST": "Primary Cause of Death",
                 "DDORRES": _code_for(detail["codes"], r.DETAIL), "DDSTRESC": _code_for(detail["codes"], r.DETAIL)}
                for r in self.t["events"].query("EVENT == 'DEATH'").itertuples()]
        return self.frame("DD", rows)


DOMAINS = ("dm", "suppdm", "ex", "mh", "pr", "ae", "cm", "pc", "lb", "rs", "ds", "dd")


def write_sdtm(tables: dict[str, pd.DataFrame], folder: str | Path, seed: int) -> list[Path]:
    """Write ``tables`` as SDTM datasets ``<domain>.xpt`` in ``folder`` (created if absent).

    Parameters
    ----------
    tables : dict of pandas.DataFrame
        A cohort as :func:`cartlib.synth.generate_cohort` gives it.
    folder : str or pathlib.Path
        Where to write (the command passes a temporary folder that replaces ``--out`` at the end).
    seed : int
        Fixes the reference date of the calendar (:func:`reference_date`).

    Returns
    -------
    list of pathlib.Path
        The files written, one per domain of :data:`DOMAINS`.

    Examples
    --------
    >>> import tempfile
    >>> from cartlib.synth import generate_cohort
    >>> with tempfile.TemporaryDirectory() as d:
    ...     [p.name for p in write_sdtm(generate_cohort(3, seed=0), d, seed=0)][:3]
    ['dm.xpt', 'suppdm.xpt', 'ex.xpt']
    """
    import pyreadstat  # only needed here

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    writer = _Writer(tables, seed, load_mapping())
    paths = []
    for name in DOMAINS:
        frame = getattr(writer, name)()
        path = folder / f"{name}.xpt"
        pyreadstat.write_xport(frame, str(path), table_name=name.upper(), file_format_version=5)
        paths.append(path)
    return paths
