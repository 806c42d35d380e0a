"""The ``cartlib`` command: run, validate, synth, init, notebooks.

Exit status: 0 done; 2 bad input (cohort, parameters, arguments, paths, an output folder
that may not be written), with one readable message and no traceback; 1 a notebook failed
(the report of the other sections is written) or the system failed (e.g. disk full);
128 + the signal number when stopped by SIGINT, SIGTERM or SIGHUP (the unfinished output
is removed, the previous one left as it was).
"""
from __future__ import annotations

import argparse
import errno
import json
import math
import signal
import sys
import textwrap
from pathlib import Path

from . import __version__
from .errors import CohortError
from .notebook_pool import NotebookFailed
from .outdir import PathError, check_output, resolve_path, shown, staged_output
from .processes import Interrupted, termination_signals_raise

# The analysis modules (and pandas with them) are imported inside the commands, not here: the
# worker processes of `cartlib run` are spawned, and each imports this module again as its main
# module before it executes a notebook; they need none of it.

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
MAX_SEED = 2**32 - 1


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block) and exit status 2."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _whole_number(text: str, low: int, high: int | None, wording: str) -> int:
    """``text`` as an int from ``low`` to ``high`` (None: no upper bound), else argparse's error."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"must be {wording}, got {text!r}")
    return value


def _count(text: str) -> int:
    """A whole number above 0 (patients, workers)."""
    return _whole_number(text, 1, None, "a whole number above 0")


def _seed(text: str) -> int:
    """A seed of numpy's generator: a whole number from 0 to 2**32 - 1."""
    return _whole_number(text, 0, MAX_SEED, f"a whole number from 0 to {MAX_SEED}")


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}")
    return value


def parameter_help(width: int = 92) -> str:
    """Every analysis parameter with its default, allowed values and meaning (``run --help``).

    >>> "km_ci = \\"plain\\"" in parameter_help()
    True
    """
    from .params import SCHEMA

    lines = ["analysis parameters (set with --set KEY=VALUE or in a --params YAML file):"]
    for name, spec in SCHEMA.items():
        default = json.dumps(spec.default, ensure_ascii=False)
        lines += textwrap.wrap(f"{name} = {default}", width=width, initial_indent="  ", subsequent_indent="      ")
        allowed = getattr(spec, "allowed", "")
        for detail in (spec.doc, f"allowed: {allowed}" if allowed else ""):
            lines += textwrap.wrap(detail, width=width, initial_indent="      ", subsequent_indent="        ")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``cartlib`` (every option documented in ``--help``)."""
    p = _Parser(prog="cartlib", description="CAR-T outcome study workbooks.")
    p.add_argument("--version", action="version", version=f"cartlib {__version__}",
                   help="print the version of cartlib and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="validate a cohort, run every notebook, write results.json and report.html",
                         description="Validate a cohort, run every section notebook and write the report folder.",
                         epilog=parameter_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--data", help="cohort folder of CSVs or an .xlsx workbook (default: the bundled cohort)")
    run.add_argument("--params", help="parameter YAML file (default: the paper's choices, listed below)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override one parameter (repeatable; VALUE is read as YAML)")
    run.add_argument("--out", required=True,
                     help="output folder: absent, empty or an earlier report (written atomically at the end)")
    run.add_argument("--force", action="store_true",
                     help="replace an --out folder that holds other files (never the input, the working "
                          "directory, the home folder, / or a repository root)")
    run.add_argument("--with-code", action="store_true", help="show code cells in the report")
    run.add_argument("--docx", action="store_true",
                     help="also write report.docx: the paper's tables (S1, 1A, 1B, 2, 3, transplant) for Word")
    run.add_argument("--workers", type=_count, default=None, help="notebooks run at once (default: cores)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")

    val = sub.add_parser("validate", help="check a cohort against the data contract, run nothing")
    val.add_argument("--data", required=True, help="cohort folder of CSVs or an .xlsx workbook")
    val.add_argument("--lloq", type=_positive_number, default=100.0,
                     help="qPCR lower limit of quantification, copies/µg DNA (default: 100)")

    syn = sub.add_parser("synth", help="write a synthetic cohort")
    syn.add_argument("--n", type=_count, default=50, help="number of patients (default: 50)")
    syn.add_argument("--seed", type=_seed, default=0, help=f"random seed, 0 to {MAX_SEED} (default: 0)")
    syn.add_argument("--out", required=True, help="cohort folder to write: absent or empty unless --overwrite")
    syn.add_argument("--overwrite", action="store_true",
                     help="replace an --out folder that holds files (never the working directory, the home "
                          "folder, / or a repository root)")
    syn.add_argument("--params", help="generative-model YAML (default: the bundled synthetic.yaml)")
    syn.add_argument("--format", choices=("csv", "sdtm"), default="csv",
                     help="csv: the six contract tables (default); sdtm: CDISC SDTM datasets (.xpt) with "
                          "calendar dates, for cartlib import-sdtm")

    sdt = sub.add_parser("import-sdtm", help="convert CDISC SDTM datasets (.xpt, .sas7bdat) into a cohort folder")
    sdt.add_argument("sdtm_dir", metavar="SDTM_DIR", help="folder of SDTM datasets (dm.xpt, ae.xpt, ...)")
    sdt.add_argument("--mapping", help="mapping YAML (default: the bundled sdtm_mapping.yaml)")
    sdt.add_argument("--out", required=True, help="cohort folder to write: absent or empty unless --overwrite")
    sdt.add_argument("--overwrite", action="store_true", help="replace an --out folder that holds files")

    ini = sub.add_parser("init", help="write a workspace (notebooks, parameter files, README) for JupyterLab")
    ini.add_argument("dir", metavar="DIR", help="folder to create")
    ini.add_argument("--force", action="store_true", help="write into DIR even if it holds files")

    tpl = sub.add_parser("template", help="write an .xlsx template of the cohort contract to fill in")
    tpl.add_argument("--out", required=True, metavar="FILE.xlsx", help="workbook to write (absent unless --overwrite)")
    tpl.add_argument("--overwrite", action="store_true", help="replace an existing --out file")

    nbs = sub.add_parser("notebooks", help="re-execute the committed notebooks in place on the default cohort")
    nbs.add_argument("names", nargs="*", help="notebook names (default: all)")

    from .simulate.commands import add_parsers as add_simulation_parsers  # `simulate` and `power`

    add_simulation_parsers(sub, count=_count, seed=_seed, max_seed=MAX_SEED)
    return p


def _read_params(path: str | None) -> dict:
    from .params import load_yaml

    if path is None:
        return {}
    return load_yaml(resolve_path(path, "--params", must_exist=True))


def _run(args) -> None:
    from .params import parse_set
    from .runner import run_suite

    values = _read_params(args.params)
    values.update(parse_set(args.set))
    if args.data is not None:
        resolve_path(args.data, "--data", must_exist=True)
    protect = (args.params,) if args.params else ()
    out = run_suite(args.out, data=args.data, overrides=values, with_code=args.with_code, workers=args.workers,
                    progress=not args.quiet, force=args.force, protect=protect, docx=args.docx)
    print(f"report: {shown(out / 'report.html')}\nresults: {shown(out / 'results.json')}"
          + (f"\nWord tables: {shown(out / 'report.docx')}" if args.docx else ""))


def _validate(args) -> None:
    from .io import load_cohort

    data = resolve_path(args.data, "--data", must_exist=True)
    cohort = load_cohort(data, lloq=args.lloq)
    print(f"{shown(args.data)}: valid ({len(cohort.subjects)} patients; fingerprint {cohort.fingerprint[:16]}…)")


def _synth(args) -> None:
    from .synth import generate_cohort, write_cohort

    params = _read_params(args.params) or None
    rules = dict(inputs=(args.params,) if args.params else (), force=args.overwrite, is_own=None,
                 force_flag="--overwrite")
    check_output(args.out, **rules)  # before the generation, which takes a while for large n
    tables = generate_cohort(args.n, args.seed, params=params)
    with staged_output(args.out, **rules) as tmp:
        if args.format == "sdtm":
            from .sdtm import write_sdtm

            write_sdtm(tables, tmp, seed=args.seed)
        else:
            write_cohort(tables, tmp)
    print(f"wrote {args.n} synthetic patients (seed {args.seed}) to {shown(args.out)}")


def _import_sdtm(args) -> None:
    from .sdtm import import_sdtm, write_imported

    source = resolve_path(args.sdtm_dir, "SDTM_DIR", must_exist=True)
    mapping = resolve_path(args.mapping, "--mapping", must_exist=True) if args.mapping else None
    rules = dict(inputs=(source,) + ((mapping,) if mapping else ()), force=args.overwrite, is_own=None,
                 force_flag="--overwrite")
    check_output(args.out, **rules)
    result = import_sdtm(source, mapping)  # every problem is found before anything is written
    with staged_output(args.out, **rules) as tmp:
        write_imported(result, tmp)
    print(f"wrote {len(result.tables['subjects'])} patients to {shown(args.out)}; "
          f"mapping report: {shown(Path(args.out) / 'mapping_report.txt')}")


def _init(args) -> None:
    from .workspace import init_workspace  # imported here: the other commands do not need it

    dest = init_workspace(Path(args.dir), force=args.force)
    print(f"wrote a workspace to {shown(dest)}; open it with: jupyter lab {shown(dest)}")


def _template(args) -> None:
    from .template import write_template  # imported here: the other commands do not need it

    out = write_template(resolve_path(args.out, "--out"), overwrite=args.overwrite)
    print(f"wrote the cohort template to {shown(out)}; fill it in, then: cartlib validate --data {shown(out)}")


def _simulation(args) -> None:
    from .simulate.commands import run_command  # imported here: Dask and Parquet only when asked

    run_command(args)


def _notebooks(args) -> None:
    from .runner import execute_in_place

    execute_in_place(args.names or None)


def _os_error_line(exc: OSError) -> str:
    where = f": {shown(exc.filename)}" if exc.filename else ""
    hint = "; free some space and run again" if exc.errno == errno.ENOSPC else ""
    return f"{exc.strerror or exc}{where}{hint}"


ATOMIC_WRITERS = {"run", "synth", "import-sdtm"}  # commands that write through cartlib.outdir.staged_output
COMMANDS = {"run": _run, "validate": _validate, "synth": _synth, "init": _init, "template": _template,
            "notebooks": _notebooks,
            "simulate": _simulation, "power": _simulation, "import-sdtm": _import_sdtm}


def main(argv: list[str] | None = None) -> int:
    """Run the ``cartlib`` command line; returns the exit status."""
    from .params import ParameterError

    args = build_parser().parse_args(argv)
    prog = f"cartlib {args.command}"
    untouched = "; the output folder was left as it was" if args.command in ATOMIC_WRITERS else ""
    try:
        with termination_signals_raise():
            COMMANDS[args.command](args)
    except (CohortError, ParameterError, PathError, FileExistsError) as exc:
        print(exc if isinstance(exc, CohortError) else f"{prog}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except NotebookFailed as exc:  # say which notebook and cell, not a traceback of the runner
        for failure in exc.failures:
            print(f"{prog}: {failure}", file=sys.stderr)
        if exc.out is not None:
            print(f"{prog}: the other sections are in {shown(exc.out / 'report.html')}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"{prog}: {_os_error_line(exc)}{untouched}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"{prog}: interrupted{untouched}", file=sys.stderr)
        return 128 + signal.SIGINT
    except Interrupted as exc:
        print(f"{prog}: {exc}{untouched}", file=sys.stderr)
        return exc.exit_status
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
