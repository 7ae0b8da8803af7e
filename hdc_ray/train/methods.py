"""The methods in one loop: which networks each trains, and which loss terms each computes.

``supervised``   one SegNet on labelled images.
``supervised_ema`` the same training, plus an EMA teacher of its weights that is validated and tested
                 (``train.eval_model``): no unlabelled data, so it isolates the EMA gain from the SSL gain.
``mean_teacher`` SegNet student + EMA teacher; softmax-MSE consistency on the strong view.
``hdc``          dual-decoder student + EMA teacher of its main branch; L_sup (both decoders) + ramp *
                 (w_pc L_pc + w_cg L_cg + w_mi L_mi). Ablations are HDC with weights set to 0. With
                 ``loss.threshold_kind="adaptive"`` the pseudo-label threshold is an EMA state
                 (``Models.pc_threshold``, saved in checkpoints).
``cps``          two SegNets supervising each other (the multi-network baseline HDC claims to undercut).
``fixmatch``     one SegNet, no teacher: its own weak-view prediction, confidence-masked, supervises its
                 strong view (UniMatch's colour jitter + blur + CutMix with a second unlabelled batch).
``unimatch``     FixMatch with two strong views of the same weak view and a feature-perturbed stream (Dropout2d
                 on the weak view's encoder features, decoded by the same decoder); L_u = w_u * (fp_share * L_fp
                 + (1 - fp_share) * mean of the two strong views) (UniMatch: 0.5 / 0.25 / 0.25).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from hdc_ray.config import Config, NoiseConfig
from hdc_ray.losses import (
    consistency_loss,
    correlation_guidance_loss,
    masked_dice_loss,
    mutual_information_loss,
    supervised_loss,
)
from hdc_ray.losses.baselines import cross_pseudo_loss, softmax_mse_loss
from hdc_ray.model import CPSPair, DualDecoderNet, FPSegNet, SegNet, build_dual, build_segnet, ema_update, make_teacher
from hdc_ray.noise import FeaturePerturbation, cutmix, warp
from hdc_ray.train.batches import WEAK_TO_STRONG, Batch
from hdc_ray.train.thresholds import AdaptiveThreshold

SUPERVISED_ONLY = ("supervised", "supervised_ema")  # methods that never see unlabelled images


@dataclass
class Models:
    trainable: nn.Module  # what the optimiser updates and DDP wraps
    teacher: SegNet | None  # EMA teacher, never wrapped, no gradients
    pc_threshold: AdaptiveThreshold | None = None  # HDC with loss.threshold_kind="adaptive" only

    def eval_net(self, which: str) -> SegNet:
        """The network that is validated and tested (config: train.eval_model)."""
        if self.teacher is not None and which == "teacher":
            return self.teacher
        net = self.trainable
        if isinstance(net, DualDecoderNet):
            return net.main_branch()
        if isinstance(net, CPSPair):
            return net.net_a
        if isinstance(net, FPSegNet):
            return net.net
        assert isinstance(net, SegNet)
        return net

    def after_step(self, decay: float) -> None:
        if self.teacher is not None:
            ema_update(self.teacher, _ema_source(self.trainable), decay)


def _ema_source(net: nn.Module) -> SegNet:
    return net.main_branch() if isinstance(net, DualDecoderNet) else net  # type: ignore[return-value]


def build_models(cfg: Config, num_classes: int) -> Models:
    method = cfg.train.method
    if method == "supervised":
        return Models(build_segnet(cfg.model, num_classes), None)
    if method in ("mean_teacher", "supervised_ema"):
        student = build_segnet(cfg.model, num_classes)
        return Models(student, make_teacher(student))
    if method == "cps":
        return Models(CPSPair(build_segnet(cfg.model, num_classes), build_segnet(cfg.model, num_classes)), None)
    if method == "fixmatch":
        return Models(build_segnet(cfg.model, num_classes), None)
    if method == "unimatch":
        return Models(FPSegNet(build_segnet(cfg.model, num_classes), FeaturePerturbation(_fp_noise(cfg))), None)
    dual = build_dual(cfg.model, num_classes, FeaturePerturbation(cfg.noise))
    lc = cfg.loss
    threshold = AdaptiveThreshold(num_classes, lc.threshold_momentum, lc.threshold_per_class) if lc.threshold_kind == "adaptive" else None
    return Models(dual, make_teacher(dual.main_branch()), threshold)


def _fp_noise(cfg: Config) -> NoiseConfig:
    """UniMatch's feature perturbation: channel dropout (Dropout2d) alone, at ``noise.fp_dropout``."""
    return dataclasses.replace(cfg.noise, feature_noise=0.0, feature_dropout=0.0, channel_dropout=cfg.noise.fp_dropout, feature_perturbation="all")


def scored_net(cfg: Config, models: Models) -> SegNet:
    """The network that is validated and tested: ``train.eval_model`` for mean teacher and HDC; always the EMA
    for ``supervised_ema`` (the arm exists to score it; ``train.method=supervised`` is its student)."""
    return models.eval_net("teacher" if cfg.train.method == "supervised_ema" else cfg.train.eval_model)


def needs_unlabeled(cfg: Config) -> bool:
    return cfg.train.method not in SUPERVISED_ONLY


def check_data_for_method(cfg: Config, data) -> None:  # type: ignore[no-untyped-def]
    """Refuse, before the first step, data the method cannot train on. ``data`` is a DataBundle."""
    from hdc_ray.data.errors import DataError

    if needs_unlabeled(cfg) and len(data.unlabeled) == 0:
        d = cfg.data
        budget = f"data.label_count={d.label_count}" if d.label_count is not None else f"data.label_ratio={d.label_ratio}"
        raise DataError(
            f"train.method={cfg.train.method} is semi-supervised but {budget} leaves no unlabelled training images "
            f"({len(data.labeled)} labelled); lower the budget, or use train.method=supervised"
        )
    if len(data.labeled) == 0:
        raise DataError(f"no labelled training images (data.label_ratio={cfg.data.label_ratio}, data.label_count={cfg.data.label_count}); raise the budget")


Terms = dict[str, Tensor]  # unweighted loss components, each a scalar; every one needs a weight
Stats = dict[str, Tensor]  # statistics for the logs (e.g. the confident fraction), never optimised


def method_terms(cfg: Config, model: nn.Module, teacher: SegNet | None, batch: Batch, threshold: AdaptiveThreshold | None = None) -> tuple[Terms, Stats]:
    """The method's loss components (unweighted) and its statistics, apart; ``model`` may be DDP-wrapped.

    ``threshold`` (``Models.pc_threshold``) is HDC's adaptive pseudo-label threshold; it is updated with
    this batch's teacher confidence before the mask is drawn (FreeMatch's order).
    """
    method = cfg.train.method
    if method in SUPERVISED_ONLY:
        return {"sup": supervised_loss(model(batch.x_w).logits, None, batch.y_w, dice_weight=cfg.loss.sup_dice, balanced=cfg.loss.sup_balance == "class")}, {}
    if method == "cps":
        return _cps_terms(cfg, model, batch), {}
    if method in WEAK_TO_STRONG:
        return _weak_to_strong_terms(cfg, model, batch)
    assert teacher is not None and batch.u_w is not None
    with torch.no_grad():
        t_out = teacher(batch.u_w)
    if method == "mean_teacher":
        return _mean_teacher_terms(cfg, model, t_out.logits, batch), {}
    return _hdc_terms(cfg, model, t_out.logits, t_out.feats, batch, threshold)


def _to_strong(x: Tensor, batch: Batch) -> Tensor:
    """Warp a teacher output (weak frame) into the student's strong frame: logits and features alike."""
    return x if batch.theta_s is None else warp(x, batch.theta_s)


def _mean_teacher_terms(cfg: Config, model: nn.Module, t_logits: Tensor, batch: Batch) -> dict[str, Tensor]:
    assert batch.u_s is not None
    n_l = batch.x_w.shape[0]
    logits = model(torch.cat([batch.x_w, batch.u_s])).logits
    return {
        "sup": supervised_loss(logits[:n_l], None, batch.y_w, dice_weight=cfg.loss.sup_dice, balanced=cfg.loss.sup_balance == "class"),
        "pc": softmax_mse_loss(logits[n_l:], _to_strong(t_logits, batch), batch.valid_s),
    }


def _cps_terms(cfg: Config, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
    assert batch.u_s is not None
    n_l = batch.x_w.shape[0]
    out_a, out_b = model(torch.cat([batch.x_w, batch.u_s]))
    dice = cfg.loss.sup_dice
    sup = 0.5 * (supervised_loss(out_a.logits[:n_l], None, batch.y_w, dice_weight=dice, balanced=cfg.loss.sup_balance == "class") + supervised_loss(out_b.logits[:n_l], None, batch.y_w, dice_weight=dice, balanced=cfg.loss.sup_balance == "class"))
    return {"sup": sup, "cps": cross_pseudo_loss(out_a.logits[n_l:], out_b.logits[n_l:])}


def _weak_to_strong_terms(cfg: Config, model: nn.Module, batch: Batch) -> tuple[Terms, Stats]:
    """FixMatch / UniMatch: one forward on (x_w, u_w, u_s[, u_s2]); the weak view's own detached prediction,
    cut-mixed with the partner batch's in each strong view's box, supervises the strong views (and UniMatch's
    feature-perturbed weak view). The partner's pseudo-labels come from a no-grad pass in eval mode (UniMatch's)."""
    assert batch.u_w is not None and batch.u_s is not None and batch.u_w_mix is not None
    lc, n_l, n_u = cfg.loss, batch.x_w.shape[0], batch.u_w.shape[0]
    pred_mix = _partner_logits(model, batch.u_w_mix)
    views = [(u_s, box) for u_s, box in ((batch.u_s, batch.box_s), (batch.u_s2, batch.box_s2)) if u_s is not None and box is not None]
    x = torch.cat([batch.x_w, batch.u_w, *(u_s for u_s, _ in views)])
    if isinstance(_unwrap(model), FPSegNet):
        out, pred_u_fp = model(x, (n_l, n_l + n_u), batch.noise_seeds[n_l:])
    else:
        out, pred_u_fp = model(x), None
    pred_x, pred_u_w, *pred_u_s = out.logits.split([n_l, n_u, *(n_u for _ in views)])
    pred_u_w = pred_u_w.detach()
    terms = {"sup": supervised_loss(pred_x, None, batch.y_w, dice_weight=lc.sup_dice, balanced=lc.sup_balance == "class")}
    losses = [_self_loss(cfg, pred, cutmix(pred_u_w, pred_mix, box)) for pred, (_, box) in zip(pred_u_s, views, strict=True)]
    terms["u_s"] = sum(losses) / len(losses)  # type: ignore[assignment]
    if pred_u_fp is not None:
        terms["u_fp"] = _self_loss(cfg, pred_u_fp, pred_u_w)
    confident = (pred_u_w.softmax(dim=1).amax(dim=1) >= lc.fixmatch_threshold).float().mean()  # UniMatch's mask ratio
    return terms, {"confident_fraction": confident, "pc_threshold": torch.tensor(lc.fixmatch_threshold)}


def _unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the network itself)."""
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model


@torch.no_grad()
def _partner_logits(model: nn.Module, u_w_mix: Tensor) -> Tensor:
    """The current network's logits on the CutMix partners' weak view, in eval mode (UniMatch's), without DDP:
    a no-grad pass needs no gradient sync."""
    net = _unwrap(model)
    seg = net.net if isinstance(net, FPSegNet) else net
    seg.eval()
    try:
        return seg(u_w_mix).logits
    finally:
        seg.train()


def _self_loss(cfg: Config, student_logits: Tensor, pseudo_logits: Tensor) -> Tensor:
    """One unlabelled term of FixMatch / UniMatch, in the form ``loss.fixmatch_loss``."""
    if cfg.loss.fixmatch_loss == "dice":
        return masked_dice_loss(student_logits, pseudo_logits, cfg.loss.fixmatch_threshold)[0]
    return consistency_loss(student_logits, pseudo_logits, cfg.loss.fixmatch_threshold)[0]


def _pc_threshold(cfg: Config, t_logits: Tensor, threshold: AdaptiveThreshold | None) -> tuple[float | Tensor, Tensor]:
    """The pseudo-label threshold of this step, and the value logged as ``train_pc_threshold``.

    "adaptive": the state takes the teacher's weak-view confidence on every unlabelled pixel, then gives
    per-class thresholds; the logged value is the global tau (the most confident class's threshold).
    """
    if cfg.loss.threshold_kind == "fixed":
        return cfg.loss.confidence_threshold, torch.tensor(cfg.loss.confidence_threshold)
    if threshold is None:
        raise ValueError("loss.threshold_kind='adaptive' needs the threshold state (Models.pc_threshold); pass threshold=models.pc_threshold")
    threshold.update(t_logits)
    return threshold.thresholds(), threshold.tau.float()


def _hdc_terms(cfg: Config, model: nn.Module, t_logits: Tensor, t_feats: dict[str, Tensor], batch: Batch, state: AdaptiveThreshold | None) -> tuple[Terms, Stats]:
    assert batch.u_s is not None and batch.valid_s is not None
    lc, n_l = cfg.loss, batch.x_w.shape[0]
    out = model(torch.cat([batch.x_w, batch.u_s]), batch.noise_seeds)
    main, noisy = out.main, out.noisy  # noisy None: model.noisy_decoder="none" (a single decoder)
    terms = {"sup": supervised_loss(main.logits[:n_l], None if noisy is None else noisy.logits[:n_l], batch.y_w, dice_weight=lc.sup_dice, balanced=lc.sup_balance == "class")}
    terms["pc"], stats = _pixel_consistency(cfg, main.logits[n_l:], None if noisy is None else noisy.logits[n_l:], t_logits, batch, state)
    if lc.w_cg > 0:  # an ablated feature term is not computed at all (it costs a Gram/correlation per level)
        terms["cg"] = _correlation_terms(cfg, main.feats, t_feats, batch)
    if lc.w_mi > 0 and noisy is not None:
        terms["mi"] = _mutual_information_term(cfg, main, noisy, batch)
    return terms, stats


def _pixel_consistency(cfg: Config, main: Tensor, noisy: Tensor | None, t_logits: Tensor, batch: Batch, state: AdaptiveThreshold | None) -> tuple[Tensor, Stats]:
    """L_pc on the unlabelled strong view, main decoder (and noisy one, ``loss.pc_on_noisy``), in the form ``loss.pc_kind``."""
    t_logits_s = _to_strong(t_logits, batch)
    on_noisy = cfg.loss.pc_on_noisy and noisy is not None
    if cfg.loss.pc_kind == "soft":  # every valid pixel counts: the mask is all of them
        losses = [softmax_mse_loss(s, t_logits_s, batch.valid_s) for s in (main, noisy)[: 1 + on_noisy] if s is not None]
        return sum(losses) / len(losses), {"confident_fraction": torch.ones(()), "pc_threshold": torch.zeros(())}  # type: ignore[return-value]
    threshold, logged = _pc_threshold(cfg, t_logits, state)
    pc, confident = consistency_loss(main, t_logits_s, threshold, batch.valid_s)
    if on_noisy:
        assert noisy is not None
        pc_noisy, _ = consistency_loss(noisy, t_logits_s, threshold, batch.valid_s)
        pc = 0.5 * (pc + pc_noisy)
    stats = {"confident_fraction": confident, "pc_threshold": logged}
    if cfg.train.log_classes and batch.valid_s is not None:
        stats |= _pseudo_label_shares(t_logits_s, threshold, batch.valid_s)
    return pc, stats


@torch.no_grad()
def _pseudo_label_shares(t_logits: Tensor, threshold: float | Tensor, valid: Tensor) -> Stats:
    """Per class K: the share of valid unlabelled pixels the teacher labels K (``pseudo_cK``), and labels K confidently
    (``confident_cK``): a class whose pseudo-labels vanish is being taught away (train.log_classes)."""
    conf, pseudo = t_logits.softmax(dim=1).max(dim=1)  # (B, H, W)
    per_pixel = threshold[pseudo] if isinstance(threshold, Tensor) and threshold.ndim == 1 else threshold
    n_valid = valid.sum().clamp_min(1)
    out: Stats = {}
    for k in range(t_logits.shape[1]):
        is_k = (pseudo == k) & valid
        out[f"pseudo_c{k}"] = is_k.sum() / n_valid
        out[f"confident_c{k}"] = (is_k & (conf >= per_pixel)).sum() / n_valid
    return out


def _correlation_terms(cfg: Config, s_feats: dict[str, Tensor], t_feats: dict[str, Tensor], batch: Batch) -> Tensor:
    """L_CG at every level of ``loss.cg_levels``: student main branch (strong view) vs warped teacher (weak view).

    Both sides are zeroed where the strong view has no counterpart in the weak view, so the correlation
    compares corresponding locations only.
    """
    n_l = batch.x_w.shape[0]
    student, teacher = [], []
    for level in cfg.loss.cg_levels:
        s = s_feats[level][n_l:]
        t = _to_strong(t_feats[level], batch)
        valid = F.interpolate(batch.valid_s[:, None].float(), size=s.shape[-2:], mode="nearest")  # type: ignore[index]
        student.append(s * valid)
        teacher.append(t * valid)
    return correlation_guidance_loss(
        student, teacher, kind=cfg.loss.cg_kind, alpha=cfg.loss.cg_alpha, max_samples=cfg.loss.cg_max_samples, generator=batch.subsample,
        form=cfg.loss.cg_form,
    )


def _mutual_information_term(cfg: Config, main, noisy, batch: Batch) -> Tensor:  # type: ignore[no-untyped-def]
    lc = cfg.loss
    if lc.mi_kind == "iic":
        return mutual_information_loss(main.logits, noisy.logits, kind="iic", detach=lc.mi_detach)
    return mutual_information_loss(
        main.feats[lc.mi_level], noisy.feats[lc.mi_level], kind="renyi", detach=lc.mi_detach,
        max_samples=lc.mi_max_samples, generator=batch.subsample,
    )


def loss_weights(cfg: Config) -> dict[str, float]:
    """The weight of every term any method computes (``weighted_total`` refuses a term without one)."""
    lc = cfg.loss
    share = lc.fp_share if cfg.train.method == "unimatch" else 0.0  # FixMatch's one strong view takes all of w_u
    return {"sup": lc.w_sup, "pc": lc.w_pc, "cg": lc.w_cg, "mi": lc.w_mi, "cps": lc.w_cps, "u_s": lc.w_u * (1 - share), "u_fp": lc.w_u * share}
