"""The ``cartlib simulate`` and ``cartlib power`` command lines (parsers and handlers).

Kept here so that :mod:`cartlib.cli` only registers them; Dask is imported when a command runs.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from ..outdir import shown
from ..params import parse_set
from ..processes import Interrupted
from ..sections import SECTION_NAMES

DEFAULT_GRID = "50,100,200,400"


def _scheduler_options(parser: argparse.ArgumentParser, count: Callable[[str], int]) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=count, default=None,
                       help="worker processes of the embedded Dask cluster (default: one per core)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="send the work to an existing Dask scheduler, e.g. tcp://HOST:8786")
    parser.add_argument("--chunk-size", type=count, default=None,
                        help="replicates per task (default: about four tasks per worker, at most 10)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="model.GROUP.NAME=VALUE changes a generative-model parameter "
                             "(parameters/synthetic.yaml); NAME=VALUE an analysis parameter (repeatable)")
    parser.add_argument("--resume", action="store_true",
                        help="continue a stopped run in --out: only the missing replicates are run")
    parser.add_argument("--force", action="store_true",
                        help="replace an --out folder that holds other files or an unfinished run")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _sections(text: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in names if s not in SECTION_NAMES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"must be a comma-separated list of {', '.join(SECTION_NAMES)}, "
                                         f"got {text!r}")
    return names


def _grid(count: Callable[[str], int]) -> Callable[[str], list[int]]:
    def parse(text: str) -> list[int]:
        try:
            return sorted({count(part.strip()) for part in text.split(",")})
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"must be comma-separated whole numbers above 0, got {text!r}") from None
    return parse


def add_parsers(sub, count: Callable[[str], int], seed: Callable[[str], int], max_seed: int) -> None:
    """Add ``simulate`` and ``power`` to the ``cartlib`` subcommands (``count``/``seed`` are the
    CLI's checks of whole numbers and seeds, so the messages match the other commands)."""
    sim = sub.add_parser("simulate", help="run many synthetic studies on Dask and summarise every results key",
                         description="Draw REPLICATES cohorts from the generative model, analyse each as "
                                     "`cartlib run` does, stream the results to Parquet under --out and write "
                                     "summary.csv, summary.json, model_check.csv and errors.csv.")
    sim.add_argument("--replicates", type=count, required=True, help="number of synthetic studies")
    sim.add_argument("--n", type=count, default=None, help="patients per study (default: the scenario's n, else 50)")
    sim.add_argument("--seed", type=seed, default=0, help=f"study seed, 0 to {max_seed} (default: 0)")
    sim.add_argument("--scenario", metavar="FILE.yaml",
                     help="scenario file or bundled scenario name (default: the model unchanged)")
    sim.add_argument("--sections", type=_sections, default=None,
                     help=f"only these results sections, comma-separated ({', '.join(SECTION_NAMES)}; default: all)")
    sim.add_argument("--out", required=True, help="simulation folder: absent, empty or an earlier simulation")
    _scheduler_options(sim, count)

    pw = sub.add_parser("power", help="power and sample size of the paper's findings over a grid of n x scenarios",
                        description="Run a simulation per study size and scenario and write power.csv, "
                                    "sample_size.csv (n for 80 %% power per finding) and power_curves.png.")
    pw.add_argument("--n", type=_grid(count), default=_grid(count)(DEFAULT_GRID),
                    help=f"study sizes, comma-separated (default: {DEFAULT_GRID})")
    pw.add_argument("--scenario", action="append", default=None, metavar="FILE.yaml",
                    help="effect scenario file or bundled name (repeatable; default: the model unchanged)")
    pw.add_argument("--replicates", type=count, default=200, help="studies per grid cell (default: 200)")
    pw.add_argument("--seed", type=seed, default=0, help=f"study seed, 0 to {max_seed} (default: 0)")
    pw.add_argument("--out", required=True, help="power folder: absent, empty or an earlier power grid")
    _scheduler_options(pw, count)


def run_command(args) -> None:
    """Run ``cartlib simulate`` or ``cartlib power`` from parsed arguments."""
    from .engine import simulate
    from .power import power_grid

    overrides = parse_set(args.set)
    common = dict(seed=args.seed, overrides=overrides, workers=args.workers, scheduler=args.scheduler,
                  chunk_size=args.chunk_size, resume=args.resume, force=args.force, progress=not args.quiet)
    try:
        if args.command == "simulate":
            r = simulate(args.out, args.replicates, n=args.n, scenario=args.scenario, sections=args.sections,
                         **common)
            print(f"{r.analysed} of {r.replicates} replicates analysed ({r.failed} failed; {r.computed} run now); "
                  f"summary: {shown(r.out / 'summary.csv')}")
            outside = r.model_check[r.model_check["outside"]]
            print(f"paper figures outside the central 95 %: {len(outside)} of {len(r.model_check)} "
                  f"({shown(r.out / 'model_check.csv')})")
        else:
            r = power_grid(args.out, args.n, args.scenario or [None], replicates=args.replicates, **common)
            for row in r.sample_size.itertuples(index=False):
                print(f"{row.scenario}: {row.finding}: n for 80 % power {row.n_for_80_text}")
            print(f"power: {shown(r.out / 'power.csv')}; curves: {shown(r.out / 'power_curves.png')}")
    except (KeyboardInterrupt, Interrupted):
        print(f"cartlib {args.command}: the finished chunks are kept in {shown(args.out)}; "
              "run the same command with --resume to continue", file=sys.stderr)
        raise
