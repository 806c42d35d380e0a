"""``python -m calibration [--out DIR] [--stages FILE]``: rebuild the bundled cohort (``make calibrate``).

Writes ``cartlib/data/default_cohort/`` (or ``--out``) atomically. ``--stages FILE`` also pickles
the intermediate records the tests check (the latent patients after the nudges and each stage,
the tables before the kinetics stage and that stage's record).
"""
from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

from cartlib.synth import DEFAULT_COHORT_DIR

from .pipeline import default_cohort_tables, simulated_tables, write_default_cohort


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calibration", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_COHORT_DIR,
                        help=f"folder to (re)write (default: {DEFAULT_COHORT_DIR})")
    parser.add_argument("--stages", type=Path, default=None,
                        help="also write the intermediate records to this pickle file")
    args = parser.parse_args(argv)
    start = time.monotonic()
    latent, kinetics = {}, {}
    before = simulated_tables(details=latent)
    tables = default_cohort_tables(details=kinetics, simulated={k: v.copy() for k, v in before.items()})
    write_default_cohort(args.out, tables)
    if args.stages is not None:
        tmp = args.stages.with_name(args.stages.name + ".tmp")
        with open(tmp, "wb") as fh:
            pickle.dump({"before_kinetics": before, "latent": latent, "tables": tables, "kinetics": kinetics}, fh)
        tmp.replace(args.stages)
    print(f"wrote {args.out} in {time.monotonic() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
