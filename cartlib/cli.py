"""The ``cartlib`` command: run, validate, synth, notebooks.

Bad input (cohort or parameters) prints a readable message, no traceback, and exits 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import CohortError
from .params import ParameterError, load_yaml, parse_set
from .runner import NotebookFailed, execute_in_place, run_suite

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cartlib", description="CAR-T outcome study workbooks.")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="validate a cohort, run every notebook, write results.json and report.html")
    run.add_argument("--data", help="cohort folder of CSVs or an .xlsx workbook (default: the bundled cohort)")
    run.add_argument("--params", help="parameter YAML file (default: the paper's choices)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one parameter")
    run.add_argument("--out", required=True, help="output folder (replaced atomically at the end)")
    run.add_argument("--with-code", action="store_true", help="show code cells in the report")
    run.add_argument("--workers", type=int, default=None, help="notebooks run at once (default: cores)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")

    val = sub.add_parser("validate", help="check a cohort against the data contract, run nothing")
    val.add_argument("--data", required=True)
    val.add_argument("--lloq", type=float, default=100.0)

    syn = sub.add_parser("synth", help="write a synthetic cohort")
    syn.add_argument("--n", type=int, default=50)
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--out", required=True)
    syn.add_argument("--params", help="generative-model YAML (default: parameters/synthetic.yaml)")

    nbs = sub.add_parser("notebooks", help="re-execute the committed notebooks in place on the default cohort")
    nbs.add_argument("names", nargs="*", help="notebook names (default: all)")
    return p


def _overrides(args) -> dict:
    values = load_yaml(args.params) if args.params else {}
    values.update(parse_set(args.set))
    return values


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            out = run_suite(args.out, data=args.data, overrides=_overrides(args), with_code=args.with_code,
                            workers=args.workers, progress=not args.quiet)
            print(f"report: {out / 'report.html'}\nresults: {out / 'results.json'}")
        elif args.command == "validate":
            from .io import load_cohort

            cohort = load_cohort(args.data, lloq=args.lloq)
            print(f"{args.data}: valid ({len(cohort.subjects)} patients; fingerprint {cohort.fingerprint[:16]}…)")
        elif args.command == "synth":
            from .synth import generate_cohort, write_cohort

            params = load_yaml(args.params) if args.params else None
            tables = generate_cohort(args.n, args.seed, params=params)
            write_cohort(tables, Path(args.out))
            print(f"wrote {args.n} synthetic patients (seed {args.seed}) to {args.out}")
        elif args.command == "notebooks":
            execute_in_place(args.names or None)
    except (CohortError, ParameterError, FileExistsError) as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except NotebookFailed as exc:  # say which notebook and cell, not a traceback of the runner
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
