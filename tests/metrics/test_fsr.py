"""FSR: share of test losses inside the papers' closed intervals R_f."""

from __future__ import annotations

import math

import pytest

from backend.errors import UnknownMethod
from backend.metrics.fsr import RF, fsr


def test_intervals_are_the_papers():
    assert RF["location"] == (0.0, 0.2)
    assert RF["topk"] == (0.0, 0.3)
    assert RF["center_mass"] == (0.1, 1.0)
    assert RF["active"] == (0.5, 2.0)


def test_fsr_counts_closed_intervals():
    assert fsr([0.0, 0.2, 0.21, 0.5], "location") == pytest.approx(0.5)
    assert fsr([0.05, 0.1, 1.0, 1.2], "center_mass") == pytest.approx(0.5)
    assert fsr([-1.3, 0.49, 0.5, 0.75], "active") == pytest.approx(0.5)
    assert math.isnan(fsr([], "topk"))


def test_unknown_attack_is_refused():
    with pytest.raises(UnknownMethod, match="location"):
        fsr([0.1], "nope")
