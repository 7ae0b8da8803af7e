"""mutual_information_loss: Renyi (ITRD) surrogate and IIC on hand-built features and logits."""

from __future__ import annotations

import math

import pytest
import torch

from hdc_ray.losses import mutual_information_loss

R = 1 / math.sqrt(2)


def _pixels(rows: list[list[float]]) -> torch.Tensor:
    """Per-pixel vectors [[d0, d1, ...], ...] -> (1, D, 1, n)."""
    t = torch.tensor(rows, dtype=torch.float32)
    return t.T.reshape(1, t.shape[1], 1, t.shape[0])


# With unit rows, G = cosine matrix, trace n, and L(x|y) = (sum Gx^2 - sum Gx^2 Gy^2) / n^2.
# main (1,0),(1,1): Gm off-diagonal R; noisy (1,0),(0,1): Gn = I.
#   L(main|noisy) = (2 + 2 R^2 - 2) / 4 = 0.25;  L(noisy|main) = (2 - 2) / 4 = 0.
# Identical (1,0),(1,1) on both sides: (2 + 2 R^2 - 2 - 2 R^4) / 4 = 0.125.
# noisy collapsed (1,0),(1,0) against main (1,0),(0,1): L(main|noisy) = 0, L(noisy|main) = 0.5.
MAIN = [[1, 0], [1, 1]]
ORTHO = [[1, 0], [0, 1]]
COLLAPSED = [[1, 0], [1, 0]]
RENYI_CASES = [
    # (main, noisy, detach, expected)
    (MAIN, ORTHO, "noisy", 0.25),  # main learns: L(main|noisy)
    (MAIN, ORTHO, "main", 0.0),  # noisy learns: L(noisy|main)
    (MAIN, ORTHO, "none", 0.125),  # symmetric mean
    (MAIN, MAIN, "none", (2 + 2 * R**2 - 2 - 2 * R**4) / 4),  # identical is not 0
    ([[2, 0], [3, 3]], [[0.5, 0], [0, 7]], "noisy", 0.25),  # rows are L2-normalised
    (ORTHO, COLLAPSED, "noisy", 0.0),
    (ORTHO, COLLAPSED, "main", 0.5),  # a collapsed learning branch is penalised
    (ORTHO, COLLAPSED, "none", 0.25),
    ([[1, 0], [1, 0], [0, 1]], [[1, 0], [1, 0], [0, 1]], "none", 0.0),  # same orthogonal clusters
]


@pytest.mark.parametrize(("main", "noisy", "detach", "expected"), RENYI_CASES)
def test_renyi_values(main, noisy, detach, expected) -> None:
    loss = mutual_information_loss(_pixels(main), _pixels(noisy), "renyi", detach)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def _onehot_logits(classes: list[int], scale: float = 20.0) -> torch.Tensor:
    """Confident 2-class logits, one pixel per entry -> (1, 2, 1, n)."""
    rows = [[scale, -scale] if c == 0 else [-scale, scale] for c in classes]
    return _pixels(rows)


def _mi(joint: list[list[float]]) -> float:
    """Mutual information (nats) of a 2x2 joint distribution, written out by hand."""
    pi = [sum(row) for row in joint]
    pj = [joint[0][j] + joint[1][j] for j in range(2)]
    return sum(joint[i][j] * math.log(joint[i][j] / (pi[i] * pj[j])) for i in range(2) for j in range(2) if joint[i][j] > 0)


IIC_CASES = [
    # (main classes, noisy classes, expected = -MI of the symmetrised joint)
    ([0, 0, 1, 1], [0, 0, 1, 1], -math.log(2)),  # agree, balanced: -log C
    ([0, 0, 1, 1], [0, 1, 0, 1], 0.0),  # independent: joint 1/4 everywhere
    ([0, 0, 1, 1], [1, 0, 1, 1], -_mi([[0.25, 0.125], [0.125, 0.5]])),  # one flip, symmetrised
    ([0, 0, 0, 0], [0, 0, 0, 0], 0.0),  # one class only: no information
]


@pytest.mark.parametrize(("main", "noisy", "expected"), IIC_CASES)
def test_iic_values(main, noisy, expected) -> None:
    loss = mutual_information_loss(_onehot_logits(main), _onehot_logits(noisy), kind="iic")
    assert loss.item() == pytest.approx(expected, abs=1e-5)


def test_iic_uniform_prediction_is_zero() -> None:
    loss = mutual_information_loss(_onehot_logits([0, 0, 1, 1]), torch.zeros(1, 2, 1, 4), "iic")
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


FEATURES = {
    "random": lambda: torch.randn(2, 4, 5, 5),
    "constant": lambda: torch.full((2, 4, 5, 5), 2.0),
    "zero": lambda: torch.zeros(2, 4, 5, 5),
}


@pytest.mark.parametrize("kind", ["renyi", "iic"])
@pytest.mark.parametrize("detach", ["none", "main", "noisy"])
@pytest.mark.parametrize("features", list(FEATURES))
def test_identical_inputs_finite(kind: str, detach: str, features: str) -> None:
    base = FEATURES[features]()
    main, noisy = base.clone().requires_grad_(), base.clone().requires_grad_()
    loss = mutual_information_loss(main, noisy, kind, detach)
    loss.backward()
    assert torch.isfinite(loss)
    for x in (main, noisy):
        assert x.grad is None or torch.isfinite(x.grad).all()
    if features != "random":  # one direction (renyi) / one prediction (iic): nothing to share
        assert loss.item() == pytest.approx(0.0, abs=1e-6)
    elif kind == "renyi":
        assert 0.0 < loss.item() < 1.0


@pytest.mark.parametrize("kind", ["renyi", "iic"])
@pytest.mark.parametrize(("detach", "frozen"), [("main", 0), ("noisy", 1), ("none", None)])
def test_detached_side_gets_no_gradient(kind: str, detach: str, frozen: int | None) -> None:
    inputs = [torch.randn(2, 3, 4, 4, requires_grad=True) for _ in range(2)]
    mutual_information_loss(*inputs, kind=kind, detach=detach).backward()
    for i, x in enumerate(inputs):
        if i == frozen:
            assert x.grad is None
        else:
            assert x.grad is not None and x.grad.abs().sum() > 0


def test_subsampling_deterministic_and_paired() -> None:
    main, noisy = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)  # n = 128 rows

    def loss(seed: int, max_samples: int | None = 32) -> float:
        gen = torch.Generator().manual_seed(seed)
        return mutual_information_loss(main, noisy, max_samples=max_samples, generator=gen).item()

    assert loss(0) == loss(0)
    assert loss(0) != loss(1)
    assert loss(0, max_samples=128) == loss(1, max_samples=None)
    # Same rows on both sides: identical one-hot clusters stay at 0 after sub-sampling.
    clusters = torch.nn.functional.one_hot(torch.randint(0, 4, (2, 8, 8)), 4)
    clusters = clusters.permute(0, 3, 1, 2).float()
    gen = torch.Generator().manual_seed(0)
    paired = mutual_information_loss(clusters, clusters.clone(), max_samples=32, generator=gen)
    assert paired.item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    ("main_shape", "noisy_shape", "kwargs"),
    [
        ((1, 2, 3, 3), (1, 2, 3, 4), {}),
        ((1, 2, 3, 3), (1, 3, 3, 3), {"kind": "iic"}),
        ((2, 3, 3), (2, 3, 3), {}),
        ((1, 2, 3, 3), (1, 2, 3, 3), {"kind": "mine"}),
        ((1, 2, 3, 3), (1, 2, 3, 3), {"detach": "teacher"}),
        ((1, 2, 4, 4), (1, 2, 4, 4), {"max_samples": 0}),
    ],
)
def test_bad_inputs_raise(main_shape, noisy_shape, kwargs) -> None:
    with pytest.raises(ValueError):
        mutual_information_loss(torch.zeros(main_shape), torch.zeros(noisy_shape), **kwargs)


@pytest.mark.parametrize("kind", ["renyi", "iic"])
def test_full_precision_under_autocast(kind: str) -> None:
    # Gram matrices in bfloat16 would carry ~3 significant digits; the loss turns autocast off.
    main, noisy = torch.randn(2, 4, 6, 6), torch.randn(2, 4, 6, 6)
    expected = mutual_information_loss(main, noisy, kind)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = mutual_information_loss(main, noisy, kind)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def _unit_rows(f: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]), dim=1)


def _renyi_mi_bits(x: torch.Tensor, y: torch.Tensor) -> float:
    """Matrix Renyi-2 MI estimate H2(Gx) + H2(Gy) - H2(Gx * Gy), H2(A) = -log2 ||A / tr A||_F^2."""

    def h2(a: torch.Tensor) -> torch.Tensor:
        return -torch.log2((a / torch.diagonal(a).sum()).square().sum())

    gx, gy = _unit_rows(x) @ _unit_rows(x).T, _unit_rows(y) @ _unit_rows(y).T
    return float(h2(gx) + h2(gy) - h2(gx * gy))


def _squared_cosine_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Kernel CKA with k(a, b) = cos(a, b)^2, the kernel L_MI sees: linear CKA is blind here, because
    L_MI only depends on G^2 and leaves each pixel's sign free (a cluster of +v and -v has zero mean)."""
    kx, ky = (_unit_rows(x) @ _unit_rows(x).T) ** 2, (_unit_rows(y) @ _unit_rows(y).T) ** 2
    h = torch.eye(kx.shape[0]) - 1.0 / kx.shape[0]
    kx, ky = h @ kx @ h, h @ ky @ h
    return float((kx * ky).sum() / (kx.norm() * ky.norm()))


@pytest.mark.parametrize("detach", ["main", "none"])
def test_gradient_steps_on_noisy_features_raise_their_agreement_with_the_main_features(detach: str) -> None:
    # Main branch: 64 pixels in 4 classes, each class a direction in 4-D feature space (plus noise). The noisy
    # branch starts random; minimising L_MI with respect to it must make it carry the main branch's structure.
    gen = torch.Generator().manual_seed(0)
    classes = torch.arange(64) % 4
    main = torch.nn.functional.one_hot(classes, 4).float().T.reshape(1, 4, 8, 8) + 0.05 * torch.randn(1, 4, 8, 8, generator=gen)
    noisy = torch.randn(1, 4, 8, 8, generator=gen).requires_grad_()
    mi_before, cka_before = _renyi_mi_bits(noisy.detach(), main), _squared_cosine_cka(noisy.detach(), main)
    opt = torch.optim.Adam([noisy], lr=0.05)
    for _ in range(100):
        loss = mutual_information_loss(main, noisy, "renyi", detach, max_samples=None)
        opt.zero_grad()
        loss.backward()
        opt.step()
    mi_after, cka_after = _renyi_mi_bits(noisy.detach(), main), _squared_cosine_cka(noisy.detach(), main)
    # Measured: MI 0.22 -> 1.98 bits (at most log2 4 = 2), CKA 0.10 -> 1.00; L_MI 0.18 -> 0.003.
    assert mi_before < 0.5 and mi_after > 1.8
    assert cka_before < 0.3 and cka_after > 0.95
    assert loss.item() < 0.01


@pytest.mark.parametrize("detach", ["none", "main", "noisy"])
def test_renyi_equals_the_explicitly_normalised_gram_definition(detach: str) -> None:
    """The loss never forms the normalised (n, n) Grams; the definition that does gives the same value."""
    g = torch.Generator().manual_seed(0)
    main, noisy = torch.randn(2, 5, 6, 6, generator=g), torch.randn(2, 5, 6, 6, generator=g)

    def rows(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(x.permute(0, 2, 3, 1).reshape(-1, x.shape[1]), dim=1)

    def norm(a: torch.Tensor) -> torch.Tensor:
        return a / (torch.diagonal(a).sum() + 1e-8)

    def gap(learn: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return norm(learn).square().sum() - norm(learn * ref).square().sum()

    z1, z2 = rows(main.double()), rows(noisy.double())
    g1, g2 = z1 @ z1.T, z2 @ z2.T
    expected = {"main": gap(g2, g1), "noisy": gap(g1, g2), "none": 0.5 * (gap(g1, g2) + gap(g2, g1))}[detach]
    got = mutual_information_loss(main, noisy, kind="renyi", detach=detach, max_samples=None)
    assert float(got) == pytest.approx(float(expected), rel=1e-5, abs=1e-7)
