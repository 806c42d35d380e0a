"""Comparing a fitted model's summary with R's coefficient table (shared by the Cox and logistic tests)."""
import numpy as np

TOL = 1e-6


def assert_matches_r(summary, ref, ratio: str) -> None:
    """Rows R estimated equal R's to ``TOL`` (``ratio``, ``ratio_lo``, ``ratio_hi`` relative, the rest
    absolute); R's NA rows are NaN here with a "dropped from the model" reason."""
    s = summary.loc[ref.index]
    estimated = ref["coef"].notna()
    for col in ("coef", "se", "z", "p"):
        np.testing.assert_allclose(s.loc[estimated, col].astype(float), ref.loc[estimated, col], rtol=0, atol=TOL,
                                   err_msg=col)
    ratios = [ratio, f"{ratio}_lo", f"{ratio}_hi"]
    for col in ratios:
        np.testing.assert_allclose(s.loc[estimated, col].astype(float), ref.loc[estimated, col], rtol=TOL, err_msg=col)
    assert s.loc[estimated, "reason"].isna().all()
    assert s.loc[~estimated, ["coef", "se", *ratios, "z", "p"]].isna().all().all()
    assert all("dropped from the model" in why for why in s.loc[~estimated, "reason"])
