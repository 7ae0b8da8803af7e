"""A local file or folder named like a packaged config or shipped spec neither hides it nor makes it unreachable."""

from __future__ import annotations

from pathlib import Path

import pytest

from hdc_ray import config as config_module
from hdc_ray.cli import main
from hdc_ray.config import CONFIG_DIR, load_config, resolve_config_path
from hdc_ray.tune.spec import SPEC_DIR, resolve_spec_path


@pytest.fixture(autouse=True)
def _fresh_notes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(config_module, "_NOTED", set())
    monkeypatch.chdir(tmp_path)


def test_a_local_file_named_like_a_packaged_config(capsys: pytest.CaptureFixture[str]) -> None:
    Path("tiny").write_text("name: mine\ndata: {image_size: 48}\n")
    assert resolve_config_path("tiny") == CONFIG_DIR / "tiny.yaml" and load_config("tiny").name == "tiny"
    err = capsys.readouterr().err
    assert err.count("note:") == 1 and "packaged config" in err and "pass ./tiny" in err
    assert load_config("./tiny").name == "mine" and load_config("./tiny").data.image_size == 48


def test_a_local_folder_named_like_a_packaged_config_does_not_make_it_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    Path("synthetic").mkdir()
    assert load_config("synthetic").name == "synthetic"
    assert "local folder 'synthetic' is not used" in capsys.readouterr().err
    with pytest.raises(config_module.ConfigError, match="is a folder"):
        load_config("./synthetic")


def test_a_local_spec_file_named_like_a_shipped_spec(capsys: pytest.CaptureFixture[str]) -> None:
    Path("smoke").write_text("name: mine\n")
    assert resolve_spec_path("smoke") == SPEC_DIR / "smoke.yaml"
    assert resolve_spec_path("./smoke") == Path("smoke")
    assert main(["validate", "smoke"]) == 0
    err = capsys.readouterr().err
    assert err.count("note:") == 1 and "packaged spec" in err  # one note, though validate resolves the name twice


def test_names_that_are_not_packaged_are_paths() -> None:
    Path("mine.yaml").write_text("name: mine\n")
    Path("plain").write_text("name: plain\n")
    assert load_config("mine.yaml").name == "mine" and load_config("plain").name == "plain"
    with pytest.raises(config_module.ConfigError, match="unknown config 'nothing'"):
        load_config("nothing")
