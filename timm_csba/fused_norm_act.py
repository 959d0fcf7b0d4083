"""Training-mode BatchNorm + (leaky) ReLU in one CPU kernel: fewer passes over the big activation maps.

On the 2-core CPU, csba_squeeze's BatchNorm and LeakyReLU layers cost about a quarter of a bf16 training step
(measured by removing them), although they do a few flops per element: each is a pass over maps such as the stem's
64 x 112 x 112 per image. `csrc/batchnorm_act.cpp` runs the pair as two passes forward and two backward instead of
three and three in training, and as one pass instead of two in eval (see its header), with the same function and
the same parameters and buffers, so weights, checkpoints and `best/` are those of the plain model.

    from timm_csba.fused_norm_act import use_fused_norm_act
    layers = use_fused_norm_act(model)      # train.py --fused-norm-act; returns how many layers it took over

The kernel is C++ compiled on first use (torch.utils.cpp_extension: a C++ compiler and ninja, about 25 s, then
cached by torch). It serves a layer only where it applies: a channels-last CPU input in float32 or bfloat16, affine
parameters in float32, no drop layer; in training mode running statistics tracked (or none), in eval mode running
statistics and no gradient to take (validation, inference). Everything else (CUDA, NCHW, fp16, eval with gradients)
takes timm's BatchNormAct2d path, which the kernel matches to float rounding.
"""
import functools
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
from timm.layers import BatchNormAct2d

__all__ = ['FusedNormActError', 'FusedBatchNormAct2d', 'load_kernel', 'use_fused_norm_act']

SOURCE = Path(__file__).parent / 'csrc' / 'batchnorm_act.cpp'


class FusedNormActError(RuntimeError):
    """The fused kernel cannot be built or used here; the message says why and what trains instead."""


@functools.lru_cache(maxsize=None)
def load_kernel():
    """Build (once per machine, cached by torch) and import the C++ kernel, or raise FusedNormActError."""
    from torch.utils import cpp_extension
    try:
        return cpp_extension.load(
            name='timm_csba_batchnorm_act',
            sources=[str(SOURCE)],
            # -march=native: the loops are written for the compiler to vectorise with whatever this CPU has
            extra_cflags=['-O3', '-march=native', '-fopenmp'],
            extra_ldflags=['-fopenmp'],
            verbose=False,
        )
    except Exception as e:  # a missing compiler or ninja, missing Python headers, a failed build: all the same fix
        raise FusedNormActError(
            f'the fused BatchNorm+activation kernel could not be built ({build_failure_reason(str(e))[:200]}); install '
            f'g++, ninja and the Python headers, or train without --fused-norm-act') from None


def build_failure_reason(message: str) -> str:
    """The line of torch's build error that says what went wrong (the compiler's error, a program not found), not
    the compiler command lines around it; else its first line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines[1:]:
        if any(sign in line for sign in ('error:', 'not found', 'No such file', 'is required')):
            return line
    return lines[0] if lines else 'no message'


def activation_slope(act: nn.Module) -> Optional[float]:
    """The negative slope of a ReLU-family activation (ReLU 0, LeakyReLU its slope, none 1), else None."""
    if isinstance(act, nn.Identity):
        return 1.0
    if isinstance(act, nn.ReLU):
        return 0.0
    if isinstance(act, nn.LeakyReLU):
        return float(act.negative_slope)
    return None


class BatchNormActFunction(torch.autograd.Function):
    """y = act(batch_norm(x)) with batch statistics; returns y and the batch mean and biased variance."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps: float, slope: float):
        kernel = load_kernel()
        channels = x.shape[1]
        mean, invstd, var = (torch.empty(channels, dtype=torch.float32) for _ in range(3))
        y = kernel.forward(x, weight, bias, mean, invstd, var, eps, slope)
        ctx.save_for_backward(x, weight, bias, mean, invstd)
        ctx.slope = slope
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    def backward(ctx, grad_y, _grad_mean, _grad_var):
        x, weight, bias, mean, invstd = ctx.saved_tensors
        grad_x, grad_weight, grad_bias = load_kernel().backward(grad_y, x, weight, bias, mean, invstd, ctx.slope)
        return grad_x, grad_weight, grad_bias, None, None


class FusedBatchNormAct2d(BatchNormAct2d):
    """timm's BatchNormAct2d whose forward runs the fused CPU kernel where it applies (module docstring).

    Made from an existing layer by `use_fused_norm_act` (the class is swapped in place), never constructed for a
    checkpoint: the parameters, buffers and state_dict are BatchNormAct2d's.
    """

    def _fused_applies(self, x: torch.Tensor) -> bool:
        if self.training:
            statistics_ok = self.track_running_stats or self.running_mean is None
        else:  # the running statistics, and no gradient to take (the eval kernel has no backward)
            statistics_ok = self.running_mean is not None and not (torch.is_grad_enabled() and any(
                t.requires_grad for t in (x, self.weight, self.bias)))
        return (
            statistics_ok
            and x.device.type == 'cpu'
            and x.dim() == 4
            and x.dtype in (torch.float32, torch.bfloat16)
            and x.is_contiguous(memory_format=torch.channels_last)
            and x.numel() > x.shape[1]  # one value per channel: leave BatchNorm's own error to BatchNorm
            and self.affine
            and self.weight.dtype == torch.float32
            and isinstance(self.drop, nn.Identity)
            and activation_slope(self.act) is not None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._fused_applies(x):
            return super().forward(x)
        slope = activation_slope(self.act)
        if not self.training:
            # BatchNorm with running statistics is a per-channel affine map: fold it, then one pass over the map
            scale = self.weight * torch.rsqrt(self.running_var.float() + self.eps)
            shift = self.bias - self.running_mean.float() * scale
            return load_kernel().inference(x, scale, shift, slope)
        y, mean, var = BatchNormActFunction.apply(x, self.weight, self.bias, self.eps, slope)
        if self.track_running_stats:
            self._update_running_stats(mean, var, rows=x.numel() // x.shape[1])
        return y

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, biased_var: torch.Tensor, rows: int) -> None:
        # as torch.nn.functional.batch_norm: exponential (momentum) or cumulative (momentum None) average,
        # the running variance unbiased
        self.num_batches_tracked.add_(1)
        factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
        self.running_var.lerp_((biased_var * (rows / (rows - 1))).to(self.running_var.dtype), factor)


def use_fused_norm_act(model: nn.Module) -> int:
    """Let every BatchNormAct2d with a ReLU-family activation in `model` train through the fused CPU kernel.

    Builds the kernel first (FusedNormActError, model untouched, if it cannot be built). Returns the number of
    layers taken over: 0 for a model without such layers (e.g. timm's resnet18, whose BatchNorm and ReLU are
    separate modules).
    """
    load_kernel()
    layers = [m for m in model.modules() if type(m) is BatchNormAct2d and activation_slope(m.act) is not None]
    for layer in layers:
        layer.__class__ = FusedBatchNormAct2d
    return len(layers)
