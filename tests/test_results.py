import json

import numpy as np
import pytest

from cartlib.results import Recorder, dumps, format_value, merge, normalise


def test_normalise_types_and_rounding():
    assert normalise(np.int64(3)) == 3 and isinstance(normalise(np.int64(3)), int)
    assert normalise(np.float64(0.1) + np.float64(0.2)) == 0.3
    assert normalise(np.bool_(True)) == 1
    assert normalise(float("nan")) is None and normalise(float("inf")) is None and normalise(None) is None
    with pytest.raises(TypeError, match="numbers or None"):
        normalise("0.5")


def test_dumps_is_sorted_and_byte_stable():
    a = dumps({"b": 1.0000000000001, "a": 2})
    b = dumps({"a": 2, "b": 1.0})
    assert a == b
    assert list(json.loads(a)) == ["a", "b"]


def test_recorder_writes_file_and_rejects_foreign_keys(tmp_path):
    path = tmp_path / "sec" / "pk.json"
    rec = Recorder(path, section="pk")
    rec.record({"pk.cmax_median": 30860.0})
    assert json.loads(path.read_text()) == {"pk.cmax_median": 30860.0}
    with pytest.raises(ValueError, match="does not belong"):
        rec.record({"efficacy.cr_n": 49})


def test_merge_refuses_a_key_recorded_twice(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"x.a": 1}))
    (tmp_path / "b.json").write_text(json.dumps({"x.a": 2}))
    with pytest.raises(ValueError, match="more than one notebook"):
        merge([tmp_path / "a.json", tmp_path / "b.json"])


def test_format_value():
    assert format_value(1890000.0) == "1890000"
    assert format_value(0.0214999) == "0.0215"
