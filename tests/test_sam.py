"""SharpnessAware: SAM's update against hand-computed values, and what the second pass must leave alone."""
import pytest
import torch
from torch import nn

from timm_csba.sam import SharpnessAware


def _sam_gradient(model, sam, loss_fn):
    """The gradient SAM hands the optimizer: the first pass at w, the second at w + e."""
    loss_fn().backward()
    sam.ascend()
    with sam.frozen_norm_statistics():
        loss_fn().backward()
    sam.descend()
    return [p.grad.clone() for p in model.parameters()]


def test_update_is_the_gradient_at_the_steepest_point_of_the_ball():
    # f(w) = 1/2 w^T A w: g = A w, e = rho * A w / ||A w||, and SAM's gradient is A (w + e), by hand
    a = torch.tensor([[3.0, 1.0], [1.0, 2.0]])
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0]]))
    w, rho = model.weight.detach().clone().squeeze(0), 0.1
    sam = SharpnessAware(model, rho)

    grad = _sam_gradient(model, sam, lambda: 0.5 * model.weight.squeeze(0) @ a @ model.weight.squeeze(0))
    g = a @ w
    assert torch.allclose(grad[0].squeeze(0), a @ (w + rho * g / g.norm()), atol=1e-6)
    assert torch.equal(model.weight.detach().squeeze(0), w)  # back at w, exactly


def test_ascent_moves_every_parameter_together_by_rho():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.randn(8, 5)).pow(2).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    sam = SharpnessAware(model, rho=0.05)
    sam.ascend()
    moved = [p.detach() - b for p, b in zip(model.parameters(), before)]
    assert torch.cat([m.flatten() for m in moved]).norm() == pytest.approx(0.05, rel=1e-5)
    scale = 0.05 / torch.cat([g.flatten() for g in grads]).norm()
    assert all(torch.allclose(m, g * scale, atol=1e-7) for m, g in zip(moved, grads))  # along the gradient
    assert all(p.grad is None for p in model.parameters())  # cleared for the second pass
    sam.descend()
    assert all(torch.allclose(p, b, atol=1e-7) for p, b in zip(model.parameters(), before))


def test_second_pass_leaves_batchnorm_statistics_as_the_first_set_them():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    x = torch.randn(6, 1, 8, 8)
    model(x).sum().backward()  # the first pass moves the running statistics once
    bn = model[1]
    after_first = [bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()]
    sam = SharpnessAware(model, rho=0.05)
    sam.ascend()
    with sam.frozen_norm_statistics():
        model(x).sum().backward()
    sam.descend()
    assert all(torch.equal(a, b) for a, b in zip(after_first, (bn.running_mean, bn.running_var,
                                                                bn.num_batches_tracked)))
    assert all(p.grad is not None for p in model.parameters())  # the second pass's gradient is kept


def test_overflowing_first_pass_takes_no_ascent():
    # fp16 loss scaling can overflow: then the weights stay at w and the update is the plain one
    model = nn.Linear(2, 1)
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.full_like(p, float('inf'))
    sam = SharpnessAware(model, rho=0.05)
    sam.ascend()
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    assert all(p.grad is None for p in model.parameters())
    sam.descend()
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))


@pytest.mark.parametrize('rho', [0.0, -0.1])
def test_radius_must_be_positive(rho):
    with pytest.raises(ValueError, match='rho > 0'):
        SharpnessAware(nn.Linear(2, 1), rho)
