"""A worker dies mid-training on a simulated 2-node cluster: Train replaces it and resumes from the checkpoint.

The pattern Ray uses for its own Train fault tests: a fault injected on the first attempt only (the run has
no checkpoint to resume from yet), ``FailureConfig(max_failures=1)``, and assertions on what was reported.
Runs in a subprocess because it needs its own multi-node cluster, not the session's single node.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]

SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] = "0.25"
    import ray
    from ray.cluster_utils import Cluster
    from ray.train import UserCallback
    from hdc_ray.config import load_config
    from hdc_ray.distributed.launch import build_trainer

    class Record(UserCallback):  # runs in Train's controller actor: carry the path, not sys.argv
        def __init__(self, path):
            self.path = path

        def after_report(self, run_context, metrics, checkpoint):
            with open(self.path, "a") as fh:
                fh.write(json.dumps({"epoch": metrics[0]["epoch"], "done": metrics[0].get("done"), "ckpt": checkpoint is not None}) + "\\n")

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)  # two "machines", one worker each
    try:
        ray.init(address=cluster.address)
        cfg = load_config("tiny", ["train.epochs=4", "train.checkpoint_every=1", "dist.workers=2", "dist.cpus_per_worker=1", "dist.max_failures=1"])
        trainer = build_trainer(cfg, name="ft", storage_path=sys.argv[1], callbacks=[Record(sys.argv[2])], loop_extra={"fail_at_epoch": 3})
        result = trainer.fit()
        print("RESULT", json.dumps({"error": None, "epoch": result.metrics.get("epoch"), "done": result.metrics.get("done")}))
    finally:
        ray.shutdown()
        cluster.shutdown()
""")


def test_a_dead_worker_is_replaced_and_the_run_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    script, reports = tmp_path / "run.py", tmp_path / "reports.jsonl"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "storage"), str(reports)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "fault injection: rank 1 exits at epoch 3" in done.stdout + done.stderr  # the fault did happen
    final = json.loads(done.stdout.split("RESULT", 1)[1].strip().splitlines()[0])
    assert final == {"error": None, "epoch": 4.0, "done": 1.0}
    rows = [json.loads(line) for line in reports.read_text().splitlines()]
    # Epochs 1-2 before the fault (checkpointed), 3-4 after the restart from epoch 2's checkpoint:
    # nothing repeated, nothing skipped, the final (test) report exactly once.
    assert [r["epoch"] for r in rows] == [1.0, 2.0, 3.0, 4.0]
    assert [r["done"] for r in rows].count(1.0) == 1 and all(r["ckpt"] for r in rows)
