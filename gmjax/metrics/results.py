"""Result types shared by several metrics."""

from __future__ import annotations

from typing import NamedTuple


class MeanStd(NamedTuple):
    """A statistic averaged over subsets (KID) or splits (IS): mean and std (ddof=0)."""

    mean: float
    std: float
