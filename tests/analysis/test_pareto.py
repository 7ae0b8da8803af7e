"""Pareto front: a known non-dominated set, ties, NaN and directions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hdc_ray.analysis import AnalysisError, pareto_front

POINTS = pd.DataFrame(
    {
        "name": ["A", "B", "C", "D", "E", "F", "G"],
        "dice": [0.90, 0.80, 0.85, 0.70, 0.70, 0.80, np.nan],
        "time": [100.0, 50.0, 120.0, 40.0, 60.0, 50.0, 10.0],
    }
)  # C is dominated by A, E by D; F ties B exactly; G has no dice


def test_known_front() -> None:
    front = pareto_front(POINTS, {"dice": "max", "time": "min"})
    assert sorted(front["name"]) == ["A", "B", "D", "F"] and front["on_front"].all()


def test_keep_all_marks_every_row() -> None:
    table = pareto_front(POINTS, {"dice": "max", "time": "min"}, keep_all=True)
    assert len(table) == len(POINTS)
    assert table.set_index("name")["on_front"].to_dict() == {"A": True, "B": True, "C": False, "D": True, "E": False, "F": True, "G": False}


def test_directions_matter() -> None:
    front = pareto_front(POINTS, {"dice": "min", "time": "max"})
    assert sorted(front["name"]) == ["C", "E"]  # E beats D on time at equal dice


def test_single_objective_keeps_ties() -> None:
    df = pd.DataFrame({"x": [1.0, 3.0, 3.0, 2.0]})
    assert pareto_front(df, {"x": "max"}).index.tolist() == [1, 2]


def test_three_objectives() -> None:
    df = pd.DataFrame({"a": [1, 2, 2], "b": [1, 1, 1], "c": [5, 5, 6]})
    assert pareto_front(df, {"a": "max", "b": "max", "c": "min"}).index.tolist() == [1]


def test_empty_and_bad_arguments() -> None:
    assert pareto_front(POINTS.iloc[:0], {"dice": "max"}).empty
    with pytest.raises(AnalysisError, match="'max' or 'min'"):
        pareto_front(POINTS, {"dice": "up"})
    with pytest.raises(AnalysisError, match="not in the table: hd95"):
        pareto_front(POINTS, {"hd95": "min"})
    with pytest.raises(AnalysisError, match="at least one objective"):
        pareto_front(POINTS, {})
