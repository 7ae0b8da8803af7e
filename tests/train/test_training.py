"""The training loop in-process: every method, determinism, resume, checkpoints, sharding."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from hdc_ray.config import Config, load_config, with_overrides
from hdc_ray.data import build_data
from hdc_ray.losses.baselines import softmax_mse_loss
from hdc_ray.noise import warp
from hdc_ray.train import checkpoint
from hdc_ray.train.batches import Shard, global_indices, make_batch
from hdc_ray.train.loop import LOW_CONFIDENT_FRACTION, fit, low_confidence_warning
from hdc_ray.train.methods import build_models, method_terms, scored_net
from hdc_ray.train.run import ResumeError, run_local, run_metadata
from hdc_ray.train.step import build_optimizer, build_scaler, step_losses, train_step


@pytest.fixture(scope="module")
def cfg() -> Config:
    return load_config("tiny", ["train.epochs=2", "train.iters_per_epoch=2"])


@pytest.fixture(scope="module")
def data(cfg: Config):  # type: ignore[no-untyped-def]
    return build_data(cfg.data)


def _quiet(_: str) -> None:
    return None


def _numbers(history: list[dict[str, float]]) -> list[dict[str, float]]:
    """Epoch records without wall-clock figures."""
    return [{k: v for k, v in h.items() if k not in ("epoch_time_s", "images_per_s")} for h in history]


@pytest.mark.parametrize("method", ["supervised", "supervised_ema", "mean_teacher", "hdc", "cps", "fixmatch", "unimatch"])
def test_every_method_trains_and_reports_its_terms(cfg: Config, data, method: str) -> None:  # type: ignore[no-untyped-def]
    run_cfg = with_overrides(cfg, {"train.method": method})
    result = fit(run_cfg, data, progress=False, log=_quiet)
    assert len(result.history) == 2 and result.best_epoch in (1, 2)
    expected = {"supervised": {"sup"}, "supervised_ema": {"sup"}, "mean_teacher": {"sup", "pc"}, "hdc": {"sup", "pc", "cg", "mi"}, "cps": {"sup", "cps"},
                "fixmatch": {"sup", "u_s"}, "unimatch": {"sup", "u_s", "u_fp"}}[method]  # fmt: skip
    terms = {k.removeprefix("train_loss_") for k in result.history[-1] if k.startswith("train_loss_")}
    assert terms == expected
    assert all(math.isfinite(v) for v in result.history[-1].values())
    assert 0.0 <= result.test["test_dice_fg"] <= 1.0 and "test_hd95_anterior_lip" in result.test


def test_losses_and_gradients_are_finite_at_step_zero_when_teacher_is_student(cfg: Config, data) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    models = build_models(cfg, 3)
    batch = make_batch(cfg, data, 0, 0, Shard(), torch.device("cpu"), with_unlabeled=True)
    total, terms, _ = step_losses(cfg, models.trainable, models.teacher, batch, ramp=1.0, threshold=models.pc_threshold)
    total.backward()
    assert all(torch.isfinite(v).all() for v in terms.values())
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in models.trainable.parameters())


def test_ablated_terms_are_not_computed(cfg: Config, data) -> None:  # type: ignore[no-untyped-def]
    ablated = with_overrides(cfg, {"loss.w_cg": 0.0, "loss.w_mi": 0.0})
    models = build_models(ablated, 3)
    batch = make_batch(ablated, data, 0, 0, Shard(), torch.device("cpu"), with_unlabeled=True)
    terms, stats = method_terms(ablated, models.trainable, models.teacher, batch, models.pc_threshold)
    assert set(terms) == {"sup", "pc"} and set(stats) == {"confident_fraction", "pc_threshold"}


def test_soft_pixel_consistency_is_the_softmax_distance_to_the_teacher_on_every_pixel(cfg: Config, data) -> None:  # type: ignore[no-untyped-def]
    soft = with_overrides(cfg, {"loss.pc_kind": "soft", "loss.w_cg": 0.0, "loss.w_mi": 0.0})
    torch.manual_seed(0)
    models = build_models(soft, 3)
    batch = make_batch(soft, data, 0, 0, Shard(), torch.device("cpu"), with_unlabeled=True)
    terms, stats = method_terms(soft, models.trainable, models.teacher, batch, models.pc_threshold)
    n_l = batch.x_w.shape[0]
    with torch.no_grad():
        t_logits = models.teacher(batch.u_w).logits
        t_logits = t_logits if batch.theta_s is None else warp(t_logits, batch.theta_s)
        out = models.trainable(torch.cat([batch.x_w, batch.u_s]), batch.noise_seeds)
    expected = 0.5 * sum(softmax_mse_loss(o.logits[n_l:], t_logits, batch.valid_s) for o in (out.main, out.noisy))
    pc = float(terms["pc"].detach())
    assert pc == pytest.approx(float(expected), rel=1e-5) and pc > 0
    assert float(stats["confident_fraction"]) == 1.0  # no mask: every valid pixel is supervised
    hard = method_terms(with_overrides(soft, {"loss.pc_kind": "hard"}), models.trainable, models.teacher, batch, models.pc_threshold)[0]
    assert float(hard["pc"].detach()) != pytest.approx(pc)


def test_same_seed_same_numbers(cfg: Config, data) -> None:  # type: ignore[no-untyped-def]
    a = fit(cfg, data, progress=False, log=_quiet)
    b = fit(cfg, data, progress=False, log=_quiet)
    assert _numbers(a.history) == _numbers(b.history) and a.test == b.test
    c = fit(with_overrides(cfg, {"train.seed": 1}), data, progress=False, log=_quiet)
    assert c.history[0]["train_loss"] != a.history[0]["train_loss"]


def test_resume_continues_exactly(cfg: Config, tmp_path: Path) -> None:
    full, _ = run_local(cfg, tmp_path / "full", progress=False)
    run_local(cfg, tmp_path / "split", progress=False)
    (tmp_path / "split" / "checkpoints" / "epoch_0002.pt").unlink()  # as if killed during epoch 2
    resumed, summary = run_local(cfg, tmp_path / "split", resume=True, progress=False)
    assert [h["train_loss"] for h in resumed.history] == pytest.approx([h["train_loss"] for h in full.history], rel=1e-6)
    assert resumed.test["test_dice_fg"] == pytest.approx(full.test["test_dice_fg"], rel=1e-6)
    metrics = json.loads((tmp_path / "split" / "metrics.json").read_text())
    assert metrics["test_dice_fg"] == pytest.approx(summary["test_dice_fg"]) and metrics["split_hash"] == summary["split_hash"]


def test_resume_refuses_a_different_config_and_fresh_runs_refuse_old_checkpoints(cfg: Config, tmp_path: Path) -> None:
    run_local(with_overrides(cfg, {"train.epochs": 1}), tmp_path / "run", progress=False)
    with pytest.raises(ResumeError, match=r"loss.w_cg"):
        run_local(with_overrides(cfg, {"loss.w_cg": 0.5}), tmp_path / "run", resume=True, progress=False)
    with pytest.raises(ResumeError, match="--resume"):
        run_local(cfg, tmp_path / "run", progress=False)


def test_checkpoints_load_with_weights_only_and_are_pruned(cfg: Config, tmp_path: Path) -> None:
    run_cfg = with_overrides(cfg, {"train.epochs": 3, "train.keep_checkpoints": 2})
    run_local(run_cfg, tmp_path, progress=False)
    kept = checkpoint.list_epochs(tmp_path / "checkpoints")
    assert [p.name for p in kept] == ["epoch_0002.pt", "epoch_0003.pt"]
    state = torch.load(kept[-1], weights_only=True)
    assert state["epoch"] == 3 and "trainable" in state and "teacher" in state and state["config"]["train.epochs"] == 3
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    net = build_models(run_cfg, 3).eval_net("teacher")
    net.load_state_dict(best["weights"])


def test_global_batches_cover_the_pool_before_repeating() -> None:
    seen = [global_indices(10, 4, 0, 0, it, 0, iters_per_epoch=5) for it in range(5)]
    flat = [int(i) for batch in seen for i in batch]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))


def test_two_shards_see_exactly_the_one_rank_batch(cfg: Config, data) -> None:  # type: ignore[no-untyped-def]
    cpu = torch.device("cpu")
    whole = make_batch(cfg, data, 1, 1, Shard(0, 1), cpu, with_unlabeled=True)
    parts = [make_batch(cfg, data, 1, 1, Shard(r, 2), cpu, with_unlabeled=True) for r in range(2)]
    for name in ("x_w", "y_w", "u_w", "u_s", "valid_s", "noise_seeds"):
        if name == "noise_seeds":
            joined = torch.cat([parts[0].noise_seeds[:2], parts[1].noise_seeds[:2], parts[0].noise_seeds[2:], parts[1].noise_seeds[2:]])
        else:
            joined = torch.cat([getattr(p, name) for p in parts])
        torch.testing.assert_close(joined, getattr(whole, name))


# ----------------------------------------------------------------------------- supervised with EMA evaluation


def test_supervised_ema_trains_like_supervised_and_evaluates_the_ema_weights(cfg: Config, data) -> None:  # type: ignore[no-untyped-def]
    sup = fit(with_overrides(cfg, {"train.method": "supervised"}), data, progress=False, log=_quiet)
    ema_cfg = with_overrides(cfg, {"train.method": "supervised_ema"})
    as_teacher = fit(ema_cfg, data, progress=False, log=_quiet)
    # train.eval_model=student (a config may set it for mean teacher and HDC) cannot turn the arm into supervised
    as_student = fit(with_overrides(ema_cfg, {"train.eval_model": "student"}), data, progress=False, log=_quiet)
    # Same data, same steps (no unlabelled batch): the student IS the supervised run, loss for loss ...
    assert [h["train_loss"] for h in as_teacher.history] == [h["train_loss"] for h in sup.history]
    # ... and the arm scores other (EMA) weights, whatever train.eval_model says.
    assert any(not torch.equal(as_teacher.best_weights[k], sup.best_weights[k]) for k in sup.best_weights)
    assert as_student.test == as_teacher.test and as_student.test != sup.test
    assert run_metadata(ema_cfg, data)["method"] == "supervised_ema"


@pytest.mark.parametrize(("method", "eval_model", "scored"), [
    ("mean_teacher", "teacher", "teacher"), ("mean_teacher", "student", "student"), ("hdc", "student", "student"),
    ("hdc", "teacher", "teacher"), ("supervised_ema", "student", "teacher"), ("supervised", "teacher", "student")])  # fmt: skip
def test_scored_net_follows_eval_model_except_for_the_supervised_ema_arm(cfg: Config, method: str, eval_model: str, scored: str) -> None:
    run = with_overrides(cfg, {"train.method": method, "train.eval_model": eval_model})
    models = build_models(run, 3)
    net = scored_net(run, models)
    if scored == "teacher":
        assert net is models.teacher
    elif method == "hdc":  # the student's main branch: a SegNet view on its encoder and main decoder
        assert net is not models.teacher and net.encoder is models.trainable.encoder and net.decoder is models.trainable.main  # type: ignore[union-attr]
    else:
        assert net is models.trainable


def test_supervised_ema_teacher_is_the_ema_of_the_student(cfg: Config, data) -> None:  # type: ignore[no-untyped-def]
    run = with_overrides(cfg, {"train.method": "supervised_ema", "train.ema_decay": 0.5})
    torch.manual_seed(0)
    models = build_models(run, 3)
    assert models.teacher is not None and models.eval_net("teacher") is models.teacher
    optimizer, scaler = build_optimizer(run, models.trainable), build_scaler(run, torch.device("cpu"))
    for it in range(3):
        batch = make_batch(run, data, 0, it, Shard(), torch.device("cpu"), with_unlabeled=False)
        assert batch.u_w is None  # no unlabelled data
        before = {k: v.clone() for k, v in models.teacher.state_dict().items()}
        train_step(run, models, models.trainable, optimizer, scaler, batch, it + 1)  # decay min(1 - 1/(t+1), 0.5) = 0.5
        student = models.trainable.state_dict()
        for k, v in models.teacher.state_dict().items():
            if v.dtype.is_floating_point:
                torch.testing.assert_close(v, 0.5 * before[k] + 0.5 * student[k])


# ----------------------------------------------------------------------------- adaptive pseudo-label threshold


def test_adaptive_threshold_state_survives_snapshot_and_restore(cfg: Config, data) -> None:  # type: ignore[no-untyped-def]
    run = with_overrides(cfg, {"loss.threshold_kind": "adaptive"})
    torch.manual_seed(0)
    models = build_models(run, 3)
    optimizer, scaler = build_optimizer(run, models.trainable), build_scaler(run, torch.device("cpu"))
    for it in range(2):
        train_step(run, models, models.trainable, optimizer, scaler, make_batch(run, data, 0, it, Shard(), torch.device("cpu"), True), it)
    assert models.pc_threshold is not None and models.pc_threshold.updates == 2
    snap = checkpoint.snapshot(run, models, optimizer, scaler, checkpoint.TrainState(epoch=1))
    fresh = build_models(run, 3)
    assert fresh.pc_threshold is not None and fresh.pc_threshold.tau.item() == pytest.approx(1 / 3)
    checkpoint.restore(snap, fresh, build_optimizer(run, fresh.trainable), build_scaler(run, torch.device("cpu")))
    assert torch.equal(fresh.pc_threshold.tau, models.pc_threshold.tau)
    assert torch.equal(fresh.pc_threshold.class_conf, models.pc_threshold.class_conf) and fresh.pc_threshold.updates == 2
    # A snapshot without the state (a fixed-threshold run) cannot resume an adaptive one exactly.
    with pytest.raises(ValueError, match="adaptive-threshold state"):
        checkpoint.restore({**snap, "pc_threshold": None}, fresh, build_optimizer(run, fresh.trainable), build_scaler(run, torch.device("cpu")))


def test_adaptive_threshold_run_resumes_exactly_and_logs_its_threshold(cfg: Config, tmp_path: Path) -> None:
    run = with_overrides(cfg, {"loss.threshold_kind": "adaptive"})
    full, _ = run_local(run, tmp_path / "full", progress=False)
    run_local(run, tmp_path / "split", progress=False)
    (tmp_path / "split" / "checkpoints" / "epoch_0002.pt").unlink()  # as if killed during epoch 2
    resumed, _ = run_local(run, tmp_path / "split", resume=True, progress=False)
    for key in ("train_loss", "train_pc_threshold", "train_confident_fraction"):
        assert [h[key] for h in resumed.history] == pytest.approx([h[key] for h in full.history], rel=1e-6)
    thresholds = [h["train_pc_threshold"] for h in full.history]
    assert 1 / 3 < thresholds[0] < thresholds[1] < 1.0  # rises from FreeMatch's 1/C as the teacher gets confident


def _record(fraction: float | None, ramp: float, epoch: int = 3) -> dict[str, float]:
    record = {"epoch": float(epoch), "ramp": ramp, "train_pc_threshold": 0.95}
    return record if fraction is None else {**record, "train_confident_fraction": fraction}


@pytest.mark.parametrize(
    ("fraction", "ramp", "warns"),
    [
        (0.0, 1.0, True),
        (LOW_CONFIDENT_FRACTION - 1e-3, 1.0, True),
        (LOW_CONFIDENT_FRACTION, 1.0, False),
        (0.0, 0.9, False),  # still ramping up: pseudo-labels are not expected to act yet
        (None, 1.0, False),  # a method without pixel consistency statistics
    ],
)
def test_low_confidence_warning(cfg: Config, fraction: float | None, ramp: float, warns: bool) -> None:
    line = low_confidence_warning(with_overrides(cfg, {"loss.threshold_kind": "fixed", "loss.confidence_threshold": 0.95}), _record(fraction, ramp))
    assert (line is not None) == warns
    if line is not None:
        assert line.startswith("WARNING: epoch 3:") and "fixed 0.95" in line and "loss.threshold_kind=adaptive" in line


@pytest.mark.parametrize(("epoch", "ramp_fraction", "warns"), [(4, 0.4, False), (5, 0.4, False), (6, 0.4, True), (8, 0.4, True), (8, 1.0, True)])
def test_low_confidence_warning_waits_for_the_teacher_after_the_ramp(cfg: Config, epoch: int, ramp_fraction: float, warns: bool) -> None:
    # 8 epochs, ramp to 3.2: the teacher is judged from epoch 5.6 (halfway to the end), and at the last epoch always
    run = with_overrides(cfg, {"train.epochs": 8, "loss.ramp_fraction": ramp_fraction, "loss.confidence_threshold": 0.95})
    assert (low_confidence_warning(run, _record(0.0, 1.0, epoch)) is not None) == warns


def test_fit_warns_once_when_pixel_consistency_never_acts(cfg: Config, data) -> None:  # type: ignore[no-untyped-def]
    run = with_overrides(cfg, {"loss.threshold_kind": "fixed", "loss.confidence_threshold": 0.999, "loss.ramp_fraction": 0.0})  # no ramp, nothing confident
    lines: list[str] = []
    result = fit(run, data, progress=False, log=lines.append)
    assert all(h["train_confident_fraction"] < LOW_CONFIDENT_FRACTION for h in result.history)
    assert sum(line.startswith("WARNING") for line in lines) == 1


def test_adaptive_warning_names_the_current_threshold(cfg: Config) -> None:
    line = low_confidence_warning(with_overrides(cfg, {"loss.threshold_kind": "adaptive"}), {**_record(0.01, 1.0), "train_pc_threshold": 0.875})
    assert line is not None and "adaptive, now 0.875" in line
