"""CDISC SDTM datasets as a cartlib cohort, and a synthetic cohort as an SDTM export.

:func:`import_sdtm` reads the SDTM domains a mapping names (``.xpt`` or ``.sas7bdat``), turns
ISO 8601 dates into study days since the CAR-T infusion and coded terms into contract codes,
and gives the six contract tables plus a mapping report; :func:`write_imported` writes them
(the command ``cartlib import-sdtm``). :func:`write_sdtm` writes a synthetic cohort as SDTM
datasets (``cartlib synth --format sdtm``). See docs/SDTM.md.

>>> import tempfile
>>> from pathlib import Path
>>> from cartlib.synth import generate_cohort
>>> with tempfile.TemporaryDirectory() as d:
...     _ = write_sdtm(generate_cohort(4, seed=1), Path(d) / "sdtm", seed=1)
...     imported = import_sdtm(Path(d) / "sdtm")
>>> len(imported.tables["subjects"]), imported.report["DM"]["used"]
(4, 4)
"""
from __future__ import annotations

from .export import write_sdtm
from .importer import SdtmImport, import_sdtm, write_imported
from .mapping import MappingError, load_mapping

__all__ = ["import_sdtm", "write_imported", "write_sdtm", "load_mapping", "SdtmImport", "MappingError"]
