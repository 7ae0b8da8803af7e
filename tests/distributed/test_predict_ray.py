"""``hdc-ray predict --address``: Ray Data with an actor pool writes exactly the masks the in-process path writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hdc_ray.config import load_config
from hdc_ray.data import SyntheticSpec, write_fugc_layout
from hdc_ray.inference.inputs import discover
from hdc_ray.inference.predict import PredictOptions, predict_folder
from hdc_ray.inference.sources import load_models, resolve
from hdc_ray.train.run import run_local


@pytest.mark.ray
@pytest.mark.slow
def test_ray_data_writes_the_same_masks_as_one_process(ray_session: None, tmp_path: Path) -> None:
    from hdc_ray.distributed.predict import predict_on_ray

    run = tmp_path / "run"
    run_local(load_config("tiny", ["train.epochs=1", "train.iters_per_epoch=2"]), run, progress=False)
    models = load_models(resolve(run))
    inputs = discover(write_fugc_layout(tmp_path / "fugc", SyntheticSpec("cervix", "easy", 40), 5, 4, seed=0))
    options = PredictOptions(batch_size=3, overlays=True, progress=False)
    local = predict_folder(models, inputs, tmp_path / "local", options)
    timing = predict_on_ray(models, inputs, tmp_path / "ray", options, address="local", workers=2)
    assert timing.images == local.images == 9 and timing.seconds > 0 and timing.wall_s is not None and timing.wall_s > 0
    for image in inputs.images:
        ours, theirs = (np.asarray(Image.open(tmp_path / side / image.mask_rel)) for side in ("local", "ray"))
        assert ours.shape == (40, 40) and np.array_equal(ours, theirs), image.key
        assert (tmp_path / "ray" / "overlays" / image.key).is_file()
    manifest = json.loads((tmp_path / "ray" / "predictions.json").read_text())
    assert manifest["runner"].startswith("ray-data (2 actor(s)") and manifest["images"] == 9
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind


@pytest.mark.ray
@pytest.mark.slow
def test_ray_data_skips_or_stops_on_unreadable_images_as_one_process_does(ray_session: None, tmp_path: Path) -> None:
    from hdc_ray.data import MhaGeometry, read_mha_image, write_mha
    from hdc_ray.distributed.predict import predict_on_ray
    from hdc_ray.inference.inputs import InputError

    run = tmp_path / "run"
    run_local(load_config("tiny", ["train.epochs=1", "train.iters_per_epoch=2"]), run, progress=False)
    models = load_models(resolve(run))
    folder = tmp_path / "scans"
    folder.mkdir()
    plane = MhaGeometry((0.25, 0.4), (3.0, 5.0), (0.0, 1.0, 1.0, 0.0))
    for i in range(4):
        write_mha(folder / f"{i}.mha", np.random.default_rng(i).integers(0, 255, (20, 28), dtype=np.uint8), geometry=plane)
    (folder / "2_bad.png").write_bytes(b"not an image")
    inputs = discover(folder)
    skip = PredictOptions(batch_size=2, progress=False, save_probabilities=True, continue_on_error=True)
    local = predict_folder(models, inputs, tmp_path / "local", skip)
    record = predict_on_ray(models, inputs, tmp_path / "ray", skip, address="local", workers=2)
    assert record.images == local.images == 4 and [k for k, _ in record.skipped] == ["2_bad.png"]
    for i in range(4):
        ours, theirs = read_mha_image(tmp_path / "local" / f"{i}.mha"), read_mha_image(tmp_path / "ray" / f"{i}.mha")
        assert np.array_equal(ours[0], theirs[0]) and theirs[1] == plane
        with np.load(tmp_path / "local" / f"{i}.npz") as a, np.load(tmp_path / "ray" / f"{i}.npz") as b:
            assert np.allclose(a["probabilities"], b["probabilities"], atol=1e-6)
    assert json.loads((tmp_path / "ray" / "errors.json").read_text())["skipped"][0]["image"] == "2_bad.png"
    with pytest.raises(InputError, match=r"2_bad\.png.*stopped after \d of 5 image\(s\)"):
        predict_on_ray(models, inputs, tmp_path / "stopped", PredictOptions(batch_size=2, progress=False), address="local", workers=2)
    assert not (tmp_path / "stopped").exists()
