"""The fused BatchNorm + activation CPU kernel: it computes what timm's BatchNormAct2d computes (outputs, gradients,
running statistics), leaves the weights and keys alone, steps aside where it does not apply, and a failed build is
one line."""
import copy
from types import SimpleNamespace

import pytest
import timm
import torch
import torch.nn.functional as F
import torch.utils.cpp_extension
from timm.layers import BatchNormAct2d

import timm_csba  # noqa: F401
from timm_csba import fused_norm_act
from timm_csba.fused_norm_act import FusedBatchNormAct2d, FusedNormActError, use_fused_norm_act

ACTS = {'leaky_relu': dict(act_layer='leaky_relu'), 'relu': dict(act_layer='relu'), 'none': dict(apply_act=False)}


def _pair(channels, act, momentum=0.1):
    """(timm's layer, the same layer on the fused kernel), with weights away from 1 and 0."""
    torch.manual_seed(0)
    plain = BatchNormAct2d(channels, momentum=momentum, **ACTS[act])
    with torch.no_grad():
        plain.weight.uniform_(0.5, 1.5)
        plain.bias.normal_()
    fused = copy.deepcopy(plain)
    assert use_fused_norm_act(fused) == 1 and type(fused) is FusedBatchNormAct2d
    return plain, fused


def _map(shape, dtype=torch.float32):
    # an offset mean, as after a convolution, and 3,200 rows per channel: several threads and blocks of rows
    return (torch.randn(shape) * 2 + 0.5).to(dtype).contiguous(memory_format=torch.channels_last)


def _step(layer, x, grad):
    x = x.detach().clone().requires_grad_()
    y = layer(x)
    y.backward(grad)
    return y.detach(), x.grad, layer.weight.grad, layer.bias.grad


def _count_eval_kernel_calls(monkeypatch):
    """A list that gets an entry each time a layer runs the eval kernel."""
    kernel, calls = fused_norm_act.load_kernel(), []

    def inference(*args):
        calls.append(args[0].shape)
        return kernel.inference(*args)

    monkeypatch.setattr(fused_norm_act, 'load_kernel', lambda: SimpleNamespace(inference=inference))
    return calls


def _max_rel(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


@pytest.mark.parametrize('act', list(ACTS))
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_training_step_matches_batchnorm_act_in_double(act, dtype):
    plain, fused = _pair(24, act)
    x, grad = _map((8, 24, 20, 20), dtype), _map((8, 24, 20, 20), dtype)
    reference = _step(copy.deepcopy(plain).double(), x.double(), grad.double())  # exact up to float64
    got = _step(fused, x, grad)
    assert all(g.dtype == r for g, r in zip(got, (dtype, dtype, torch.float32, torch.float32)))
    # float32: float rounding; bfloat16: the output and input gradient are stored in 8 bits of mantissa
    tol = 1e-5 if dtype == torch.float32 else 1e-2
    for name, g, r in zip(('output', 'input grad', 'weight grad', 'bias grad'), got, reference):
        assert _max_rel(g, r) < tol, name


@pytest.mark.parametrize('momentum', [0.1, None])
def test_running_statistics_follow_batchnorm(momentum):
    plain, fused = _pair(16, 'leaky_relu', momentum)
    for seed in range(3):
        torch.manual_seed(seed)
        x = _map((4, 16, 12, 12))
        plain(x)
        fused(x)
    assert fused.num_batches_tracked.item() == plain.num_batches_tracked.item() == 3
    torch.testing.assert_close(fused.running_mean, plain.running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fused.running_var, plain.running_var, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('act', list(ACTS))
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_eval_without_gradients_matches_batchnorm_act(act, dtype, monkeypatch):
    plain, fused = _pair(16, act)
    eval_calls = _count_eval_kernel_calls(monkeypatch)
    with torch.no_grad():  # running statistics away from 0 and 1, and a negative scale: the fold must keep the sign
        for layer in (plain, fused):
            layer.running_mean.copy_(torch.linspace(-1, 1, 16))
            layer.running_var.copy_(torch.linspace(0.5, 2, 16))
            layer.weight[0] = -0.7
    x = _map((4, 16, 12, 12), dtype)
    plain.eval(), fused.eval()
    with torch.inference_mode():
        got, reference = fused(x), copy.deepcopy(plain).double()(x.double())
    assert got.dtype == dtype and got.is_contiguous(memory_format=torch.channels_last)
    assert _max_rel(got, reference) < (1e-6 if dtype == torch.float32 else 1e-2)
    with torch.no_grad():
        assert torch.equal(fused(x), got)  # no_grad takes the kernel too, and it is deterministic
    assert len(eval_calls) == 2


def test_eval_with_gradients_and_nchw_take_batchnorm_act_itself(monkeypatch):
    plain, fused = _pair(16, 'leaky_relu')
    eval_calls = _count_eval_kernel_calls(monkeypatch)
    x = _map((4, 16, 12, 12))
    plain.eval(), fused.eval()
    # eval with a gradient to take (e.g. saliency maps): the kernel has no eval backward, so timm's layer runs
    got, reference = _step(fused, x, torch.ones_like(x)), _step(plain, x, torch.ones_like(x))
    assert all(torch.equal(g, r) for g, r in zip(got, reference))
    with torch.no_grad():
        fused(x.contiguous())  # NCHW
    assert not eval_calls
    nchw = x.contiguous()
    assert torch.equal(fused.train()(nchw), plain.train()(nchw))
    assert torch.equal(fused.running_mean, plain.running_mean)


def test_csba_squeeze_trains_the_same_with_the_same_weights():
    torch.manual_seed(0)
    plain = timm.create_model('csba_squeeze', num_classes=4, in_chans=1).to(memory_format=torch.channels_last)
    fused = copy.deepcopy(plain)
    layers = [m for m in plain.modules() if isinstance(m, BatchNormAct2d)]
    assert use_fused_norm_act(fused) == len(layers) == 17
    assert list(fused.state_dict()) == list(plain.state_dict())
    x = torch.randn(8, 1, 96, 96).contiguous(memory_format=torch.channels_last)
    target = torch.arange(8) % 4
    losses = []
    for model in (plain, fused):
        model.train()
        torch.manual_seed(1)  # the same dropout masks
        loss = F.cross_entropy(model(x), target)
        loss.backward()
        losses.append(loss.item())
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    # Tensor by tensor, float32 is itself a few percent off float64 for some late-stage weights at initialisation
    # (timm's layers and the kernel alike, measured against a float64 copy); the whole gradient agrees to rounding.
    plain_grad = torch.cat([p.grad.flatten() for p in plain.parameters()])
    fused_grad = torch.cat([p.grad.flatten() for p in fused.parameters()])
    assert ((fused_grad - plain_grad).norm() / plain_grad.norm()).item() < 0.02
    for key, value in plain.state_dict().items():  # running statistics after the step
        torch.testing.assert_close(fused.state_dict()[key], value, rtol=1e-4, atol=1e-6)
    with torch.no_grad():  # validation: all 17 layers on the eval kernel
        torch.testing.assert_close(fused.eval()(x), plain.eval()(x), rtol=1e-4, atol=1e-5)


def test_model_without_batchnorm_act_layers_is_left_alone():
    assert use_fused_norm_act(timm.create_model('resnet18', num_classes=4)) == 0


def test_failed_build_is_one_line_naming_the_fix(monkeypatch):
    def no_compiler(*args, **kwargs):  # torch's message when CXX names no program
        raise RuntimeError("Error building extension 'timm_csba_batchnorm_act': [1/2] c++ -MMD -MF batchnorm_act.o.d\n"
                           "FAILED: batchnorm_act.o\nc++ -MMD -MF batchnorm_act.o.d\n/bin/sh: 1: c++: not found\n"
                           "ninja: build stopped: subcommand failed.")

    monkeypatch.setattr(torch.utils.cpp_extension, 'load', no_compiler)
    fused_norm_act.load_kernel.cache_clear()
    model = timm.create_model('csba_squeeze', num_classes=4)
    try:
        with pytest.raises(FusedNormActError) as e:
            use_fused_norm_act(model)
    finally:
        fused_norm_act.load_kernel.cache_clear()  # the next test builds (or finds) the real kernel again
    message = str(e.value)
    assert '\n' not in message and '(/bin/sh: 1: c++: not found)' in message and 'install g++' in message
    assert not any(isinstance(m, FusedBatchNormAct2d) for m in model.modules())
