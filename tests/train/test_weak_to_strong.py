"""FixMatch and UniMatch in the loop: their terms rebuilt by hand from the batch, the weights, the views."""

from __future__ import annotations

import pytest
import torch

from hdc_ray.config import Config, load_config, with_overrides
from hdc_ray.data import build_data
from hdc_ray.losses import consistency_loss, masked_dice_loss, supervised_loss
from hdc_ray.model import FPSegNet, SegNet
from hdc_ray.noise import cutmix
from hdc_ray.train import step
from hdc_ray.train.batches import Shard, make_batch
from hdc_ray.train.loop import fit
from hdc_ray.train.methods import build_models, loss_weights, scored_net
from hdc_ray.train.schedules import ramp_at


@pytest.fixture(scope="module")
def cfg() -> Config:
    # A low threshold so that pseudo-labels exist at step 0; every strong view cut-mixed.
    return load_config("tiny", ["train.epochs=2", "train.iters_per_epoch=2", "loss.fixmatch_threshold=0.4", "noise.cutmix_p=1.0"])


@pytest.fixture(scope="module")
def data(cfg: Config):  # type: ignore[no-untyped-def]
    return build_data(cfg.data)


def _batch(cfg: Config, data):  # type: ignore[no-untyped-def]
    return make_batch(cfg, data, 0, 1, Shard(), torch.device("cpu"), with_unlabeled=True)


def test_weights_are_uni_matchs_and_there_is_no_ramp(cfg: Config) -> None:
    uni, fix = with_overrides(cfg, {"train.method": "unimatch"}), with_overrides(cfg, {"train.method": "fixmatch"})
    assert (loss_weights(uni)["u_s"], loss_weights(uni)["u_fp"]) == (0.5, 0.5)  # 0.25 per strong view, 0.5 fp
    assert loss_weights(fix)["u_s"] == 1.0
    assert ramp_at(uni, 0) == ramp_at(fix, 0) == 1.0
    assert 0.0 < ramp_at(with_overrides(uni, {"loss.fixmatch_ramp": True}), 0) < 0.01


def test_batch_has_two_cut_mixed_strong_views_for_unimatch_one_for_fixmatch(cfg: Config, data) -> None:  # type: ignore[no-untyped-def]
    uni = _batch(with_overrides(cfg, {"train.method": "unimatch"}), data)
    fix = _batch(with_overrides(cfg, {"train.method": "fixmatch"}), data)
    assert uni.u_s2 is not None and uni.box_s2 is not None and fix.u_s2 is None and fix.box_s2 is None
    assert uni.theta_s is None and uni.valid_s is None  # photometric strong views: nothing to warp
    assert torch.equal(uni.u_w, fix.u_w) and torch.equal(uni.u_s, fix.u_s)  # same draws for the first view
    assert uni.box_s is not None and bool(uni.box_s.any()) and not torch.equal(uni.box_s, uni.box_s2)
    assert uni.n_images == 4 * 4 and fix.n_images == 3 * 4  # x, u_w, u_s (, u_s2)


def test_unimatch_terms_by_hand(cfg: Config, data) -> None:  # type: ignore[no-untyped-def]
    run = with_overrides(cfg, {"train.method": "unimatch"})
    torch.manual_seed(0)
    models = build_models(run, 3)
    net = models.trainable
    assert isinstance(net, FPSegNet) and models.teacher is None
    batch = _batch(run, data)
    total, terms, stats = step.step_losses(run, net, None, batch, ramp=1.0)
    n = batch.x_w.shape[0]
    with torch.no_grad():
        net.eval()
        pred_mix = net.net(batch.u_w_mix).logits
        net.train()
        # The feature perturbation draws from the batch's per-image seeds: the same dropout as in the step.
        out, pred_fp = net(torch.cat([batch.x_w, batch.u_w, batch.u_s, batch.u_s2]), (n, 2 * n), batch.noise_seeds[n:])
    pred_x, pred_w, pred_s1, pred_s2 = out.logits.split(n)
    t = 0.4
    s1 = masked_dice_loss(pred_s1, cutmix(pred_w, pred_mix, batch.box_s), t)[0]
    s2 = masked_dice_loss(pred_s2, cutmix(pred_w, pred_mix, batch.box_s2), t)[0]
    fp = masked_dice_loss(pred_fp, pred_w, t)[0]
    sup = supervised_loss(pred_x, None, batch.y_w)
    for name, value in (("sup", sup), ("u_s", (s1 + s2) / 2), ("u_fp", fp)):
        torch.testing.assert_close(terms[name], value, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(total, sup + 0.25 * s1 + 0.25 * s2 + 0.5 * fp, rtol=1e-5, atol=1e-6)
    assert float(fp) > 0 and float(s1) > 0 and 0 < float(stats["confident_fraction"]) <= 1


def test_fixmatch_ce_form_is_the_masked_ce_of_the_cut_mixed_pseudo_labels(cfg: Config, data) -> None:  # type: ignore[no-untyped-def]
    run = with_overrides(cfg, {"train.method": "fixmatch", "loss.fixmatch_loss": "ce"})
    torch.manual_seed(0)
    models = build_models(run, 3)
    net = models.trainable
    assert isinstance(net, SegNet)
    batch = _batch(run, data)
    total, terms, _ = step.step_losses(run, net, None, batch, ramp=1.0)
    n = batch.x_w.shape[0]
    with torch.no_grad():
        net.eval()
        pred_mix = net(batch.u_w_mix).logits
        net.train()
        pred_x, pred_w, pred_s = net(torch.cat([batch.x_w, batch.u_w, batch.u_s])).logits.split(n)
    u_s = consistency_loss(pred_s, cutmix(pred_w, pred_mix, batch.box_s), 0.4)[0]
    torch.testing.assert_close(terms["u_s"], u_s, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(total, supervised_loss(pred_x, None, batch.y_w) + u_s, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["fixmatch", "unimatch"])
def test_tiny_training(cfg: Config, data, method: str) -> None:  # type: ignore[no-untyped-def]
    run = with_overrides(cfg, {"train.method": method})
    result = fit(run, data, progress=False, log=lambda _: None)
    last = result.history[-1]
    expected = {"sup", "u_s", "u_fp"} if method == "unimatch" else {"sup", "u_s"}
    assert {k.removeprefix("train_loss_") for k in last if k.startswith("train_loss_")} == expected
    assert last["train_loss_u_s"] > 0 and 0 < last["train_confident_fraction"] <= 1 and last["ramp"] == 1.0
    assert 0.0 <= result.test["test_dice_fg"] <= 1.0
    assert fit(run, data, progress=False, log=lambda _: None).history[-1]["train_loss"] == last["train_loss"]  # same seed, same numbers
    models = build_models(run, 3)
    assert isinstance(scored_net(run, models), SegNet)


def test_two_shards_see_exactly_the_one_rank_batch(cfg: Config, data) -> None:  # type: ignore[no-untyped-def]
    run = with_overrides(cfg, {"train.method": "unimatch"})
    cpu = torch.device("cpu")
    whole = make_batch(run, data, 1, 1, Shard(0, 1), cpu, with_unlabeled=True)
    parts = [make_batch(run, data, 1, 1, Shard(r, 2), cpu, with_unlabeled=True) for r in range(2)]
    for name in ("u_w", "u_s", "u_s2", "u_w_mix", "box_s", "box_s2"):
        torch.testing.assert_close(torch.cat([getattr(p, name) for p in parts]), getattr(whole, name))


def test_unimatch_resumes_exactly(cfg: Config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hdc_ray.train.run import run_local

    run = with_overrides(cfg, {"train.method": "unimatch"})
    full, _ = run_local(run, tmp_path / "full", progress=False)
    run_local(run, tmp_path / "split", progress=False)
    (tmp_path / "split" / "checkpoints" / "epoch_0002.pt").unlink()  # as if killed during epoch 2
    resumed, _ = run_local(run, tmp_path / "split", resume=True, progress=False)
    assert [h["train_loss"] for h in resumed.history] == pytest.approx([h["train_loss"] for h in full.history], rel=1e-6)
    assert resumed.test["test_dice_fg"] == pytest.approx(full.test["test_dice_fg"], rel=1e-6)
