"""Parallel seeded fills (models.fill): every element drawn, the right distribution, the same values for
the same seed whatever the thread count, and safe on parameters that require grad."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
fill = pytest.importorskip("chipbench.models.fill")

BIG = fill.PARALLEL_MIN_NUMEL + 12345  # over the threshold, not a multiple of the chunk count


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_normal_fills_every_element_with_the_asked_distribution():
    t = torch.full((BIG,), float("nan"))
    torch.manual_seed(0)
    fill.normal_(t, 1.5, 0.02)
    assert not torch.isnan(t).any()
    assert abs(float(t.mean()) - 1.5) < 1e-4
    assert abs(float(t.std()) / 0.02 - 1.0) < 0.01
    chunk = BIG // fill.CHUNKS  # each chunk has its own stream: no two chunks alike
    assert not torch.equal(t[:chunk], t[chunk : 2 * chunk])


def test_uniform_stays_in_bounds_and_covers_them():
    t = torch.full((BIG,), float("nan"), dtype=torch.bfloat16)
    torch.manual_seed(0)
    fill.uniform_(t, -0.25, 0.5)
    f = t.float()
    assert not torch.isnan(f).any()
    assert float(f.min()) >= -0.25 and float(f.max()) <= 0.5
    assert float(f.min()) < -0.24 and float(f.max()) > 0.49
    # torch's own bf16 uniform_ is the reference: its rounding puts the mean about 1e-3 under 0.125 (half
    # a bf16 step at the top of the range), so the two means agree within 5 standard errors of their gap.
    ref = torch.empty(BIG, dtype=torch.bfloat16).uniform_(-0.25, 0.5).float()
    se = 0.75 / 12**0.5 * (2 / BIG) ** 0.5
    assert abs(float(f.mean()) - float(ref.mean())) < 5 * se


def test_same_seed_same_values_whatever_the_thread_count(threads):
    torch.set_num_threads(4)  # the pool even on a one-core machine, against one thread below
    torch.manual_seed(7)
    a = fill.normal_(torch.empty(BIG))
    torch.set_num_threads(1)
    torch.manual_seed(7)
    b = fill.normal_(torch.empty(BIG))
    assert torch.equal(a, b)
    torch.manual_seed(8)
    assert not torch.equal(a, fill.normal_(torch.empty(BIG)))


def test_a_given_generator_is_used_and_advanced():
    g = torch.Generator().manual_seed(3)
    a = fill.normal_(torch.empty(BIG), generator=g)
    b = fill.normal_(torch.empty(BIG), generator=g)
    assert not torch.equal(a, b)
    g2 = torch.Generator().manual_seed(3)
    assert torch.equal(a, fill.normal_(torch.empty(BIG), generator=g2))


def test_parameters_that_require_grad_are_filled_in_place():
    p = torch.nn.Parameter(torch.zeros(BIG))
    ptr = p.data_ptr()
    fill.normal_(p, 0.0, 1.0)  # the pool's threads run with grad mode on: must not trip autograd
    assert p.requires_grad and p.data_ptr() == ptr and p.grad_fn is None
    assert float(p.detach().abs().sum()) > 0


@pytest.mark.parametrize("shape", [(1000,), "non-contiguous"])
def test_small_or_strided_tensors_take_the_one_call_fill(shape):
    if shape == "non-contiguous":
        t, u = torch.empty(2 * BIG)[::2], torch.empty(2 * BIG)[::2]
    else:
        t, u = torch.empty(shape), torch.empty(shape)
    torch.manual_seed(5)
    fill.normal_(t)
    torch.manual_seed(5)
    u.normal_()
    assert torch.equal(t, u)
