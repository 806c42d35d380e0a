"""The result of a univariable screen (Cox or logistic): the paper's 'p < 0.2 enters' procedure."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class ScreenResult:
    """Univariable screen: one row per covariate (``table``) and those with p < screen_p (``selected``).

    >>> r = ScreenResult(pd.DataFrame({"p": [0.1, 0.5]}, index=["a", "b"]), ["a"], 0.2)
    >>> r.selected
    ['a']
    """

    table: pd.DataFrame
    selected: list
    screen_p: float
