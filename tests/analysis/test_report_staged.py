"""``hdc-ray report`` writes its folder whole or not at all (issue 12): an interrupted report leaves the
previous one untouched and no temporary folder behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from hdc_ray.analysis import report as report_module
from hdc_ray.analysis.report import report_results


def test_report_lands_in_place_with_paths_of_the_final_folder(fake_results: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    rep = report_results(str(fake_results), out=out)
    assert rep.markdown == out / "report.md" and rep.markdown.exists()
    assert all(p.parent == out and p.exists() for p in rep.plots.values())
    assert str(out / "report.md") in rep.summary and ".tmp-" not in rep.summary
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_interrupted_report_leaves_the_previous_one(fake_results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "report"
    report_results(str(fake_results), out=out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(report_module, "_notes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        report_results(str(fake_results), out=out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # the staging folder is gone
