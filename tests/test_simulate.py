"""Simulation studies: the same summary bytes whatever runs the replicates, resume, error records,
summaries, scenarios and the command line's refusals.

Small on purpose: n = 20, 6 replicates; one embedded cluster and one real scheduler + worker pair.
"""
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cartlib.cli import main
from cartlib.sections import compute_results
from cartlib.simulate import (FINDINGS, cohort_from_tables, load_scenario, power_grid, replicate_seed,
                              sample_size_for, simulate, summarise, wilson_interval)
from cartlib.simulate import replicate as replicate_module
from cartlib.synth import generate_cohort

N, REPLICATES, SEED = 20, 4, 5
SUMMARY_FILES = ("summary.csv", "summary.json", "model_check.csv", "errors.csv")
CHEAP = ("cohort", "bca", "transplant")  # the fast sections, for the tests of the folder mechanics


def _bytes(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in SUMMARY_FILES}


def _assert_same_summaries(folder: Path, reference: Path) -> None:
    for name in SUMMARY_FILES:
        a, b = (folder / name).read_bytes(), (reference / name).read_bytes()
        if a != b:   # name the lines that differ, not two blobs
            diff = [(x, y) for x, y in zip(a.decode().splitlines(), b.decode().splitlines()) if x != y]
            pytest.fail(f"{name} differs from the reference: {diff[:5]}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The full analysis of every replicate, in this process, one chunk."""
    out = tmp_path_factory.mktemp("sim") / "reference"
    result = simulate(out, REPLICATES, n=N, seed=SEED, workers=0, chunk_size=REPLICATES, progress=False)
    return result


def test_replicate_seed_is_the_spawned_child_and_reproduces_the_cohort(reference):
    children = np.random.SeedSequence(SEED).spawn(REPLICATES)
    data = reference.replicate_values()
    assert data["seed"].tolist() == [int(c.generate_state(1)[0]) for c in children]
    # replicate 2's values are those of the cohort `cartlib synth --seed <its seed>` writes
    alone = compute_results(cohort_from_tables(generate_cohort(N, int(data.at[2, "seed"]))))
    row = data.iloc[2]
    for key in ("cohort.female_n", "efficacy.os_5y", "efficacy.lfs.multi.female.hr", "pk.cmax_median"):
        assert (row[key] == alone[key]) or (math.isnan(row[key]) and alone[key] is None)


def test_summary_holds_every_numeric_key_with_its_statistics(reference):
    s = reference.summary.set_index("key")
    keys = compute_results(cohort_from_tables(generate_cohort(N, replicate_seed(SEED, 0)))).keys()
    assert set(keys) <= set(s.index)
    assert s.at["cohort.n", "mean"] == N and s.at["cohort.n", "sd"] == 0
    p = s.loc["efficacy.lfs.multi.female.p"]
    assert 0 <= p["power_lo"] <= p["power"] <= p["power_hi"] <= 1
    assert s.at["efficacy.os_5y", "paper"] == 0.749
    assert 0 <= s.at["efficacy.os_5y", "paper_percentile"] <= 100
    assert math.isnan(s.at["efficacy.os_5y", "power"])          # not a p-value key
    assert reference.analysed == REPLICATES and reference.failed == 0
    flat = json.loads((reference.out / "summary.json").read_text())
    assert flat["simulation.replicates"] == REPLICATES and "efficacy.os_5y.p97_5" in flat


def _start(args, log):
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_a_real_scheduler_and_worker_give_the_same_bytes(reference, tmp_path):
    dask = str(Path(sys.executable).with_name("dask"))
    address_file = tmp_path / "scheduler.json"
    procs = []
    with open(tmp_path / "dask.log", "wb") as log:
        try:
            procs.append(_start([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                 "--scheduler-file", str(address_file)], log))
            deadline = time.monotonic() + 60
            while not address_file.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            address = json.loads(address_file.read_text())["address"]
            procs.append(_start([dask, "worker", address, "--nworkers", "1", "--nthreads", "1",
                                 "--no-dashboard", "--host", "127.0.0.1"], log))
            result = simulate(tmp_path / "pair", REPLICATES, n=N, seed=SEED, scheduler=address, chunk_size=4,
                              progress=False)
        finally:
            for proc in reversed(procs):
                _stop(proc)
    _assert_same_summaries(result.out, reference.out)


def test_resume_runs_only_what_is_missing_and_gives_the_same_bytes(tmp_path):
    once = simulate(tmp_path / "once", REPLICATES, n=N, seed=SEED, workers=0, chunk_size=1, sections=CHEAP,
                    progress=False)
    part = simulate(tmp_path / "grown", 3, n=N, seed=SEED, workers=0, chunk_size=2, sections=CHEAP, progress=False)
    assert part.computed == 3
    # a run stopped after some chunks: the parts on disk stay, a lost one is run again
    (tmp_path / "grown" / "replicates" / "part-0000002-0000002.parquet").unlink()
    grown = simulate(tmp_path / "grown", REPLICATES, n=N, seed=SEED, workers=0, chunk_size=3, sections=CHEAP,
                     resume=True, progress=False)
    assert grown.computed == REPLICATES - 2
    assert _bytes(grown.out) == _bytes(once.out)
    # and nothing left to do is nothing done
    again = simulate(tmp_path / "grown", REPLICATES, n=N, seed=SEED, workers=0, sections=CHEAP, resume=True,
                     progress=False)
    assert again.computed == 0 and _bytes(again.out) == _bytes(once.out)


def test_a_section_subset_gives_the_full_runs_values(reference, tmp_path):
    cheap = simulate(tmp_path / "cheap", REPLICATES, n=N, seed=SEED, workers=0, sections=CHEAP, progress=False)
    full = reference.summary.set_index("key")
    part = cheap.summary.set_index("key")
    assert set(part.index) == {k for k in full.index if k.split(".")[0] in CHEAP}
    pd.testing.assert_frame_equal(part, full.loc[part.index])


def test_a_failing_replicate_is_recorded_counted_and_the_run_goes_on(tmp_path, monkeypatch):
    real = replicate_module.analyse

    def flaky(cohort, analysis, sections=None):
        if len(cohort.subjects) and cohort.subjects["AGE"].iloc[0] == first_age:
            raise RuntimeError("boom")
        return real(cohort, analysis, sections)

    first_age = generate_cohort(N, replicate_seed(SEED, 1))["subjects"]["AGE"].iloc[0]
    monkeypatch.setattr(replicate_module, "analyse", flaky)
    result = simulate(tmp_path / "flaky", 3, n=N, seed=SEED, workers=0, sections=("cohort",), progress=False)
    assert (result.analysed, result.failed) == (2, 1)
    errors = pd.read_csv(result.out / "errors.csv")
    assert errors["replicate"].tolist() == [1] and errors["seed"].tolist() == [replicate_seed(SEED, 1)]
    assert errors["error"].iloc[0].startswith("RuntimeError: boom")
    assert result.summary.set_index("key").at["cohort.n", "estimable"] == 2


def test_wilson_interval_and_power_count_not_estimable_as_not_significant():
    # R: prop.test(8, 10, correct = FALSE)$conf.int
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4901625, abs=1e-7) and hi == pytest.approx(0.9433178, abs=1e-7)
    data = pd.DataFrame({"replicate": range(5), "seed": range(5), "error": [None] * 4 + ["X: y"],
                         "a.p": [0.01, np.nan, 0.2, 0.04, 0.0], "a.hr": [1.0, 2.0, 3.0, 4.0, 9.0]})
    s = summarise(data, figures=[{"key": "a.hr", "value": 2.0}]).set_index("key")
    assert s.at["a.p", "power"] == 0.5 and s.at["a.p", "not_estimable"] == 0.25   # the failed one is left out
    assert s.at["a.hr", "paper_percentile"] == 37.5 and s.at["a.hr", "mean"] == 2.5


def test_sample_size_interpolates_in_log_n():
    assert sample_size_for([50, 100, 200, 400], [0.2, 0.6, 0.8, 0.95])[1] == "200"
    value, text = sample_size_for([50, 100], [0.7, 0.9])
    assert value == pytest.approx(math.exp(math.log(50) + 0.5 * math.log(2)), abs=0.1) and text == "71"


def test_power_grid_writes_curves_and_sample_sizes(tmp_path):
    r = power_grid(tmp_path / "power", ns=[20, 30], scenarios=["no_effects"], replicates=1, seed=1, workers=0,
                   progress=False)
    assert set(r.power["finding"]) == set(FINDINGS) and set(r.power["n"]) == {20, 30}
    assert set(r.sample_size["finding"]) <= set(FINDINGS)
    for name in ("power.csv", "sample_size.csv", "power_curves.png"):
        assert (r.out / name).stat().st_size > 0
    assert (r.out / "runs" / "no_effects" / "n30" / "summary.csv").is_file()


def test_scenarios_change_the_model_by_name():
    s = load_scenario("no_effects")
    assert s.model["outcomes"]["relapse_female"] == 0.0 and s.model["response"]["per_log10_cmax"] == 0.0
    with pytest.raises(ValueError, match="unknown model parameter 'outcomes.relapse_femal'.*relapse_female"):
        s.with_overrides({"model.outcomes.relapse_femal": 1})


def _status(argv):
    try:
        return main(argv)
    except SystemExit as exc:   # argparse's own refusals exit from the parser
        return exc.code


@pytest.mark.parametrize("argv, message", [
    (["--set", "model.outcomes.nope=1"], "unknown model parameter 'outcomes.nope'"),
    (["--set", "landmark_dya=3"], "unknown parameter 'landmark_dya'"),
    (["--set", "model.outcomes=1"], "is a group"),
    (["--scenario", "SCEN"], "unknown name 'effect'"),
    (["--scenario", "nonesuch"], "neither a file nor a bundled scenario"),
    (["--workers", "0"], "must be a whole number above 0"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "not allowed with argument"),
    (["--seed", "-1"], "must be a whole number from 0"),
])
def test_cli_refuses_bad_input_with_one_line_and_exit_2(tmp_path, capsys, argv, message):
    scen = tmp_path / "s.yaml"
    scen.write_text("effect: 1\n")
    argv = [str(scen) if a == "SCEN" else a for a in argv]
    status = _status(["simulate", "--replicates", "2", "--n", "10", "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_cli_resumes_a_stopped_run_on_two_workers_with_the_same_bytes(reference, tmp_path, capsys):
    out = tmp_path / "sim"
    simulate(out, 2, n=N, seed=SEED, workers=0, chunk_size=1, progress=False)
    (out / "summary.csv").unlink()   # as a stopped run leaves it: finished parts, no summary
    parts = {p.name: p.read_bytes() for p in (out / "replicates").iterdir()}
    argv = ["simulate", "--replicates", str(REPLICATES), "--seed", str(SEED), "--workers", "2", "--chunk-size", "1",
            "--quiet", "--out", str(out)]
    assert main(argv + ["--n", str(N)]) == 2
    assert "holds an unfinished simulation (2 replicates done); pass --resume" in capsys.readouterr().err
    assert main(argv + ["--n", str(N + 1), "--resume"]) == 2
    assert f"n was {N}, now {N + 1}" in capsys.readouterr().err
    assert main(argv + ["--n", str(N), "--resume"]) == 0
    assert f"{REPLICATES} of {REPLICATES} replicates analysed (0 failed; 2 run now)" in capsys.readouterr().out
    assert all((out / "replicates" / name).read_bytes() == data for name, data in parts.items())
    assert len(list((out / "replicates").glob("part-*.parquet"))) == REPLICATES
    _assert_same_summaries(out, reference.out)
