"""correlation_guidance_loss: ITRD and Gram kinds on hand-built features."""

from __future__ import annotations

import math

import pytest
import torch

from hdc_ray.losses import correlation_guidance_loss

LOG2_EPS = math.log2(1e-8)  # ITRD value at a perfect match (c_d = 1 for every dimension)

# Columns over n = 4 pixels, each with mean 0 and population std 1.
A = [1.0, -1.0, 1.0, -1.0]
B = [1.0, -1.0, -1.0, 1.0]  # uncorrelated with A
NEG_A = [-1.0, 1.0, -1.0, 1.0]  # correlation -1 with A
S3 = math.sqrt(0.75)
HALF = [0.5 * a + S3 * b for a, b in zip(A, B, strict=True)]  # correlation 0.5 with A, std 1


def _feat(*columns: list[float]) -> torch.Tensor:
    """Columns of per-pixel values -> (1, D, 2, 2): the 4 pixels in row-major order."""
    return torch.tensor(columns, dtype=torch.float32).reshape(1, len(columns), 2, 2)


ITRD_CASES = [
    # (student columns, teacher columns, alpha, expected): L = log2(1e-8 + sum_d |1 - c_d|^(2a))
    ((A, A), (B, NEG_A), 1.5, math.log2(1 + 8)),  # c = (0, -1): 1^3 + 2^3
    ((A, A), (B, NEG_A), 1.0, math.log2(1 + 4)),  # 1^2 + 2^2
    ((A, A), (HALF, A), 1.5, math.log2(0.5**3)),  # c = (0.5, 1): -3
    ((A, A), (HALF, HALF), 2.0, math.log2(2 * 0.5**4)),
    ((A, B), (A, B), 1.5, LOG2_EPS),  # identical
    ((A, B), ([3 * a + 2 for a in A], [0.1 * b - 5 for b in B]), 1.5, LOG2_EPS),  # affine teacher
]


@pytest.mark.parametrize(("student", "teacher", "alpha", "expected"), ITRD_CASES)
def test_itrd_values(student, teacher, alpha, expected) -> None:
    loss = correlation_guidance_loss([_feat(*student)], [_feat(*teacher)], "itrd", alpha)
    assert loss.item() == pytest.approx(expected, abs=1e-3)


def test_itrd_mean_over_levels() -> None:
    level1 = (_feat(A, A), _feat(B, NEG_A))  # log2 9
    level2 = (_feat(A, A), _feat(B, B))  # c = (0, 0): log2 2 = 1
    loss = correlation_guidance_loss([level1[0], level2[0]], [level1[1], level2[1]])
    assert loss.item() == pytest.approx((math.log2(9) + 1) / 2, abs=1e-4)


GRAM_CASES = [
    # 2 pixels; A = cosine affinity of the pixels; MSE over the 2x2 matrix.
    ([[1, 0], [0, 1]], [[1, 0], [1, 0]], 0.5),  # I vs ones: two off-diagonal errors of 1
    ([[1, 0], [0, 1]], [[1, 1], [2, 0]], 0.25),  # off-diagonal 1/sqrt(2): 2 * 0.5 / 4
    ([[1, 1], [2, 0]], [[3, 3], [0.5, 0]], 0.0),  # rows rescaled: same affinity
]


@pytest.mark.parametrize(("student", "teacher", "expected"), GRAM_CASES)
def test_gram_values(student, teacher, expected) -> None:
    def feat(pixels: list[list[float]]) -> torch.Tensor:  # [[d0, d1], ...] -> (1, 2, 1, 2)
        return torch.tensor(pixels, dtype=torch.float32).T.reshape(1, 2, 1, 2)

    loss = correlation_guidance_loss([feat(student)], [feat(teacher)], kind="gram")
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_gram_pools_to_gram_size() -> None:
    # Pooled to a single pixel, every non-zero map has affinity [[1]]: loss 0 for any features.
    s, t = torch.rand(2, 3, 4, 4) + 0.1, torch.rand(2, 3, 4, 4) + 0.1
    assert correlation_guidance_loss([s], [t], kind="gram", gram_size=1).item() < 1e-10
    assert correlation_guidance_loss([s], [t], kind="gram", gram_size=4).item() > 0.0


FEATURES = {
    "random": lambda: torch.randn(2, 5, 6, 6),
    "constant": lambda: torch.full((2, 5, 6, 6), 3.0),
    "zero": lambda: torch.zeros(2, 5, 6, 6),
}


@pytest.mark.parametrize("kind", ["itrd", "gram"])
@pytest.mark.parametrize("features", list(FEATURES))
def test_identical_features_finite_and_minimal(kind: str, features: str) -> None:
    # Step 0: the EMA teacher IS the student.
    base = FEATURES[features]()
    student = [base.clone().requires_grad_(), base[:, :3, :3, :3].clone().requires_grad_()]
    teacher = [base.clone(), base[:, :3, :3, :3].clone()]
    loss = correlation_guidance_loss(student, teacher, kind=kind)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(s.grad).all() for s in student)
    if kind == "gram":
        assert loss.item() == 0.0
    elif features == "random":
        assert loss.item() == pytest.approx(LOG2_EPS, abs=1e-3)
    else:  # zero std: every dimension standardises to 0, c_d = 0, sum = D -> mean of log2 5, log2 3
        assert loss.item() == pytest.approx((math.log2(5) + math.log2(3)) / 2, abs=1e-6)


@pytest.mark.parametrize("kind", ["itrd", "gram"])
def test_teacher_gets_no_gradient(kind: str) -> None:
    student = torch.randn(2, 4, 5, 5, requires_grad=True)
    teacher = torch.randn(2, 4, 5, 5, requires_grad=True)
    correlation_guidance_loss([student], [teacher], kind=kind).backward()
    assert teacher.grad is None
    assert torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0


def test_subsampling_deterministic_and_paired() -> None:
    s, t = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)  # n = 128 rows

    def loss(seed: int, max_samples: int | None = 16) -> float:
        gen = torch.Generator().manual_seed(seed)
        return correlation_guidance_loss([s], [t], max_samples=max_samples, generator=gen).item()

    assert loss(0) == loss(0)
    assert loss(0) != loss(1)
    assert loss(0, max_samples=128) == loss(1, max_samples=None)  # n <= max_samples: all rows
    # Same rows on both sides: identical features stay at the minimum after sub-sampling.
    gen = torch.Generator().manual_seed(0)
    same = correlation_guidance_loss([s], [s.clone()], max_samples=16, generator=gen)
    assert same.item() == pytest.approx(LOG2_EPS, abs=1e-3)


@pytest.mark.parametrize(
    ("student", "teacher", "kwargs"),
    [
        ([], [], {}),
        ([torch.zeros(1, 2, 3, 3)], [], {}),
        ([torch.zeros(1, 2, 3, 3)] * 2, [torch.zeros(1, 2, 3, 3)], {}),
        ([torch.zeros(1, 2, 3, 3)], [torch.zeros(1, 3, 3, 3)], {}),
        ([torch.zeros(2, 3, 3)], [torch.zeros(2, 3, 3)], {}),
        ([torch.zeros(1, 2, 3, 3)], [torch.zeros(1, 2, 3, 3)], {"kind": "cka"}),
        ([torch.zeros(1, 2, 3, 3)], [torch.zeros(1, 2, 3, 3)], {"alpha": 0.25}),
        ([torch.zeros(1, 2, 3, 3)], [torch.zeros(1, 2, 3, 3)], {"max_samples": 1}),
        ([torch.zeros(1, 2, 3, 3)], [torch.zeros(1, 2, 3, 3)], {"kind": "gram", "gram_size": 0}),
        ([torch.zeros(1, 2, 3, 3)], [torch.zeros(1, 2, 3, 3)], {"form": "sqrt"}),
    ],
)
def test_bad_inputs_raise(student, teacher, kwargs) -> None:
    with pytest.raises(ValueError):
        correlation_guidance_loss(student, teacher, **kwargs)


@pytest.mark.parametrize("kind", ["itrd", "gram"])
def test_full_precision_under_autocast(kind: str) -> None:
    s, t = torch.randn(2, 4, 6, 6), torch.randn(2, 4, 6, 6)
    expected = correlation_guidance_loss([s], [t], kind)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = correlation_guidance_loss([s], [t], kind)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


FORM_CASES = [
    # S = sum_d |1 - c_d|^(2 alpha) over D = 2 dimensions; log2 S, log2(1 + S), S / D.
    ((A, A), (B, NEG_A), 1.5, 9.0),  # c = (0, -1): S = 1 + 8
    ((A, A), (HALF, A), 1.5, 0.125),  # c = (0.5, 1): S = 0.5^3
    ((A, A), (HALF, HALF), 2.0, 0.125),  # S = 2 * 0.5^4
]


@pytest.mark.parametrize(("student", "teacher", "alpha", "s"), FORM_CASES)
def test_itrd_forms_known_values(student, teacher, alpha, s) -> None:
    def loss(form: str) -> float:
        return correlation_guidance_loss([_feat(*student)], [_feat(*teacher)], "itrd", alpha, form=form).item()

    assert loss("log") == pytest.approx(math.log2(s), abs=1e-4)
    assert loss("log1p") == pytest.approx(math.log2(1 + s), abs=1e-4)
    assert loss("linear") == pytest.approx(s / 2, abs=1e-4)


@pytest.mark.parametrize("form", ["log1p", "linear"])
def test_bounded_forms_are_zero_at_a_perfect_match(form: str) -> None:
    feats = torch.randn(2, 5, 6, 6, generator=torch.Generator().manual_seed(0))
    assert correlation_guidance_loss([feats.clone()], [feats], form=form).item() == pytest.approx(0.0, abs=1e-6)


def _grad_norm(form: str, eps: float) -> float:
    gen = torch.Generator().manual_seed(0)
    teacher = torch.randn(2, 8, 6, 6, generator=gen)
    student = (teacher + eps * torch.randn(2, 8, 6, 6, generator=gen)).requires_grad_()
    (grad,) = torch.autograd.grad(correlation_guidance_loss([student], [teacher], form=form, max_samples=None), student)
    return grad.norm().item()


EPS = (1.0, 0.3, 0.1)  # student = teacher + eps * noise approaches the teacher


def test_log_form_gradient_grows_as_the_student_reaches_the_teacher() -> None:
    # d log2(S) = dS / (S ln 2): as S -> 0 the log form amplifies its own gradient (until 1e-8 inside
    # the log takes over, at S ~ 1e-8). Measured: 0.32 at eps 1, 1.4 at 0.3, 4.3 at 0.1.
    norms = [_grad_norm("log", eps) for eps in EPS]
    assert norms[0] < norms[1] < norms[2] and norms[2] > 10 * norms[0]


@pytest.mark.parametrize("form", ["log1p", "linear"])
def test_bounded_form_gradient_shrinks_as_the_student_reaches_the_teacher(form: str) -> None:
    norms = [_grad_norm(form, eps) for eps in EPS]
    assert norms[0] > norms[1] > norms[2] and norms[2] < 1e-3 * norms[0]


def test_log_over_log1p_gradient_ratio_is_one_plus_one_over_s() -> None:
    # Same dS on both sides: |grad log| / |grad log1p| = (1 + S) / S, with S read from the log form.
    gen = torch.Generator().manual_seed(1)
    teacher = torch.randn(2, 4, 6, 6, generator=gen)
    student = teacher + 0.3 * torch.randn(2, 4, 6, 6, generator=gen)
    s = 2.0 ** correlation_guidance_loss([student], [teacher], form="log", max_samples=None).item()
    ratio = _norm_at(student, teacher, "log") / _norm_at(student, teacher, "log1p")
    assert ratio == pytest.approx((1 + s) / s, rel=1e-3) and ratio > 10


def _norm_at(student: torch.Tensor, teacher: torch.Tensor, form: str) -> float:
    s = student.clone().requires_grad_()
    (grad,) = torch.autograd.grad(correlation_guidance_loss([s], [teacher], form=form, max_samples=None), s)
    return grad.norm().item()
