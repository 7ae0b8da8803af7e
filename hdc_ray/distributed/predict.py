"""``hdc-ray predict --address``: the same prediction on Ray Data, for folders too big for one machine.

A dataset of (index, path) rows goes through ``map_batches`` with a fixed-size actor pool of
``inference.batch.BatchPredictor`` (each actor rebuilds the models once, from weights shipped through
the object store, and warms up); the masks come back as bytes to this process, which writes them into the
staged output folder exactly as the in-process path does (same layout, same manifest, same atomic rename,
same handling of unreadable images: skipped with ``continue_on_error``, else the run stops and keeps its
masks in ``OUT.partial/``).
The workers read the images by path: on a multi-node cluster INPUT must be on storage every node sees.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from hdc_ray.distributed.cluster import ClusterError, connect
from hdc_ray.inference.batch import BatchPredictor, model_payload, unpack_row
from hdc_ray.inference.inputs import InputError, InputSet
from hdc_ray.inference.predict import PredictOptions, RunRecord, check_output, output_folder, save_outputs, write_manifest
from hdc_ray.inference.sources import LoadedModel


def predict_on_ray(
    models: Sequence[LoadedModel], inputs: InputSet, out: Path, options: PredictOptions, *,
    address: str | None, workers: int = 2, gpu: bool = False, overwrite: bool = False,
) -> RunRecord:  # fmt: skip
    """Masks for every image of ``inputs`` into ``out``, predicted by ``workers`` Ray Data actors.

    ``address``: ``auto`` / ``HOST:PORT`` joins a cluster; ``local`` (or None) starts a private one with a
    CPU per actor and one for the reading tasks. The timing excludes the actors' start-up and warm-up: it
    is the actors' busy time (read + predict, after their warm-up) over the pool; the wall time is reported too.
    """
    import ray
    import ray.data

    if workers < 1:
        raise ClusterError(f"--workers {workers}: need at least one predictor actor")
    check_output(out, inputs, overwrite)
    local = address in (None, "local")
    connect(None if local else address, num_cpus=workers + 1 if local else None, log_to_driver=False)
    if gpu and ray.cluster_resources().get("GPU", 0.0) < workers:
        raise ClusterError(f"--gpu: {workers} actor(s) need {workers} GPU(s), the cluster has {ray.cluster_resources().get('GPU', 0.0):g}")
    _quiet_ray_data()
    rows = [{"index": i, "path": str(image.path)} for i, image in enumerate(inputs.images)]
    dataset = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 4 * workers)))
    predicted = dataset.map_batches(
        BatchPredictor,
        fn_constructor_kwargs={"payload": model_payload(list(models)), "tta": options.tta, "device": "cuda" if gpu else "cpu", "keep_images": options.overlays,
                               "keep_probabilities": options.save_probabilities},
        batch_size=options.batch_size, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1, num_gpus=1 if gpu else 0, batch_format="numpy",
    )  # fmt: skip
    record = RunRecord(measured=f"read, resize, network in {workers} actor(s), their busy time / {workers}")
    busy = 0.0
    with output_folder(out, inputs, record) as stage:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(rows), desc="predict (Ray Data)", unit="img", disable=not options.progress, leave=False, dynamic_ncols=True)
        start = time.perf_counter()
        for raw in predicted.iter_rows():
            row = unpack_row(raw, models[0].card.num_classes)
            entry = inputs.images[row.index]
            busy += float(raw["seconds"])
            bar.update(1)
            if row.error and not options.continue_on_error:
                raise InputError(row.error)
            if row.error:
                record.skip(entry.key, row.error)
                continue
            save_outputs(stage, entry, row.picture, row.mask, options.overlays, row.probabilities)
            record.note(row.picture.conversions, entry.key)
            record.images += 1
        bar.close()
        # The actors warmed up in their constructors; their busy time over the pool is the throughput the
        # pool sustains once started, and the wall time says what the start-up costs on top.
        record.seconds, record.wall_s = busy / workers, time.perf_counter() - start
        write_manifest(stage, models, inputs, options, record, f"ray-data ({workers} actor(s){', GPU' if gpu else ''})")
    return record


def _quiet_ray_data() -> None:
    """Ray Data logs every execution plan at INFO and draws its own bars; ours counts masks written."""
    import logging

    import ray.data

    from hdc_ray.console import is_verbose

    if not is_verbose(False):
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        ray.data.DataContext.get_current().enable_progress_bars = False

