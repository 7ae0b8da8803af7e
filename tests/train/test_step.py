"""train_step: the total is the method's formula, every term is weighted, statistics stay apart."""

from __future__ import annotations

import pytest
import torch

from hdc_ray.config import Config, load_config, with_overrides
from hdc_ray.data import build_data
from hdc_ray.losses.consistency import confidence_sums
from hdc_ray.train import methods, step
from hdc_ray.train.batches import Shard, make_batch
from hdc_ray.train.methods import build_models, loss_weights, needs_unlabeled
from hdc_ray.train.schedules import ema_decay_at, lr_at, ramp_at


@pytest.fixture(scope="module")
def cfg() -> Config:
    return load_config("tiny", ["train.epochs=2", "train.iters_per_epoch=2", "loss.w_pc=0.7", "loss.w_cg=0.3", "loss.w_mi=0.2", "loss.w_sup=1.5"])


@pytest.fixture(scope="module")
def data(cfg: Config):  # type: ignore[no-untyped-def]
    return build_data(cfg.data)


def _batch(cfg: Config, data):  # type: ignore[no-untyped-def]
    return make_batch(cfg, data, 0, 0, Shard(), torch.device("cpu"), with_unlabeled=needs_unlabeled(cfg))


def test_hdc_total_is_sup_plus_ramped_weighted_unsupervised_terms(cfg: Config, data) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    models = build_models(cfg, 3)
    ramp = 0.25
    total, terms, stats = step.step_losses(cfg, models.trainable, models.teacher, _batch(cfg, data), ramp, models.pc_threshold)
    assert set(terms) == {"sup", "pc", "cg", "mi"} and set(stats) == {"confident_fraction", "pc_threshold"}
    if cfg.loss.threshold_kind == "fixed":
        assert float(stats["pc_threshold"]) == pytest.approx(cfg.loss.confidence_threshold)
    expected = 1.5 * terms["sup"] + ramp * (0.7 * terms["pc"] + 0.3 * terms["cg"] + 0.2 * terms["mi"])
    assert torch.allclose(total, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("method", "names"), [("supervised", {"sup"}), ("supervised_ema", {"sup"}), ("mean_teacher", {"sup", "pc"}), ("cps", {"sup", "cps"})])
def test_baselines_total(cfg: Config, data, method: str, names: set[str]) -> None:  # type: ignore[no-untyped-def]
    run = with_overrides(cfg, {"train.method": method})
    torch.manual_seed(0)
    models = build_models(run, 3)
    total, terms, stats = step.step_losses(run, models.trainable, models.teacher, _batch(run, data), ramp=0.5)
    assert set(terms) == names and stats == {}
    w = loss_weights(run)
    expected = sum((w[k] * (1.0 if k == "sup" else 0.5) * v for k, v in terms.items()), torch.zeros(()))
    assert torch.allclose(total, expected, rtol=1e-6, atol=1e-7)


def test_a_term_without_a_weight_is_an_error_not_silently_dropped(cfg: Config, data, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    original = methods.method_terms

    def with_new_term(*args, **kwargs):  # type: ignore[no-untyped-def]
        terms, stats = original(*args, **kwargs)
        return {**terms, "new_term": terms["sup"] * 0.0}, stats

    monkeypatch.setattr(step, "method_terms", with_new_term)
    models = build_models(cfg, 3)
    with pytest.raises(ValueError, match=r"no weight for loss component.*new_term"):
        step.step_losses(cfg, models.trainable, models.teacher, _batch(cfg, data), ramp=1.0, threshold=models.pc_threshold)


def test_train_step_updates_weights_and_teacher_and_reports_apart(cfg: Config, data) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    models = build_models(cfg, 3)
    optimizer = step.build_optimizer(cfg, models.trainable)
    scaler = step.build_scaler(cfg, torch.device("cpu"))
    assert models.teacher is not None
    before = [p.detach().clone() for p in models.trainable.parameters()]
    teacher_before = [p.detach().clone() for p in models.teacher.parameters()]
    out = step.train_step(cfg, models, models.trainable, optimizer, scaler, _batch(cfg, data), step=3)
    assert out.lr == lr_at(cfg, 3) and out.ramp == ramp_at(cfg, 3)
    assert not out.total.requires_grad and all(not v.requires_grad for v in out.terms.values())
    assert 0.0 <= float(out.stats["confident_fraction"]) <= 1.0
    assert any(not torch.equal(a, b) for a, b in zip(before, models.trainable.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(teacher_before, models.teacher.parameters(), strict=True))
    assert all(not p.requires_grad for p in models.teacher.parameters())


def test_schedules(cfg: Config) -> None:
    assert ema_decay_at(cfg, 0) == 0.0 and ema_decay_at(cfg, 10**6) == cfg.train.ema_decay
    assert ramp_at(cfg, 10**6) == 1.0 and 0.0 < ramp_at(cfg, 0) < 0.01


def test_adaptive_threshold_is_the_ema_of_the_teachers_confidence(cfg: Config, data) -> None:  # type: ignore[no-untyped-def]
    run = with_overrides(cfg, {"loss.threshold_kind": "adaptive", "loss.threshold_momentum": 0.9})
    torch.manual_seed(0)
    models = build_models(run, 3)
    assert models.pc_threshold is not None and models.pc_threshold.tau.item() == pytest.approx(1 / 3)
    batch = _batch(run, data)
    with torch.no_grad():
        sums = confidence_sums(models.teacher(batch.u_w).logits)  # type: ignore[misc]
    expected = 0.9 / 3 + 0.1 * float(sums[0] / sums[-1])  # one EMA step from FreeMatch's 1/C
    _, _, stats = step.step_losses(run, models.trainable, models.teacher, batch, 1.0, models.pc_threshold)
    assert models.pc_threshold.tau.item() == pytest.approx(expected) and models.pc_threshold.updates == 1
    assert float(stats["pc_threshold"]) == pytest.approx(expected, rel=1e-6)
    # tau starts near 1/C, the floor of any pixel's max-probability: at first nearly every pixel passes.
    assert float(stats["confident_fraction"]) > 0.5


def test_adaptive_threshold_without_its_state_is_a_clear_error(cfg: Config, data) -> None:  # type: ignore[no-untyped-def]
    run = with_overrides(cfg, {"loss.threshold_kind": "adaptive"})
    models = build_models(run, 3)
    with pytest.raises(ValueError, match=r"Models\.pc_threshold"):
        step.step_losses(run, models.trainable, models.teacher, _batch(run, data), 1.0)
