"""Sharpness-aware minimisation (SAM, Foret et al., ICLR 2021) around any timm optimizer.

SAM takes each update's gradient not at the weights w but at w + rho * g / ||g||, the point of steepest ascent
within a ball of radius rho (to first order), so the optimizer descends towards flat minima. The
imbalance-training paper ("Simplifying Neural Network Training Under Class Imbalance", Shwartz-Ziv et al., NeurIPS
2023, arXiv:2312.02517) finds that SAM widens the margins around minority samples. It costs a second forward and
backward pass per update:

    loss = criterion(model(x), y); loss.backward()       # g at w
    sam.ascend()                                          # w -> w + e, gradient cleared
    with sam.frozen_norm_statistics():
        criterion(model(x), y).backward()                 # g at w + e
    sam.descend()                                         # w + e -> w; the gradient at w + e stays
    optimizer.step()

Under data parallelism the gradient of the first pass is already averaged over processes, so every process moves
to the same point. Under fp16 loss scaling an overflowing first pass (an infinite gradient norm) takes no ascent:
its update is the plain one, and the scaler skips it if the second pass overflows too.
"""
import contextlib
from typing import Dict, Iterator

import torch
from torch import nn

__all__ = ['SharpnessAware']


def check_rho(rho: float) -> None:
    """Raise ValueError unless `rho` is a usable neighbourhood radius."""
    if rho <= 0:
        raise ValueError(f'SAM needs a neighbourhood radius rho > 0 (e.g. 0.05), got {rho}')


class SharpnessAware:
    """The ascent and the return of SAM's two-pass update, for the parameters of `model` (which are not copied)."""

    def __init__(self, model: nn.Module, rho: float):
        check_rho(rho)
        self.model, self.rho = model, rho
        self._offsets: Dict[nn.Parameter, torch.Tensor] = {}

    @torch.no_grad()
    def ascend(self) -> None:
        """Move every parameter with a gradient by e = rho * g / ||g|| (||g|| over all of them) and clear the
        gradients, ready for the second pass."""
        params = [p for p in self.model.parameters() if p.grad is not None]
        if not params:
            return
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
        if torch.isfinite(norm):
            scale = self.rho / (norm + 1e-12)
            for p in params:
                offset = p.grad * scale
                p.add_(offset)
                self._offsets[p] = offset
        for p in params:
            p.grad = None

    @torch.no_grad()
    def descend(self) -> None:
        """Return the parameters to w; the gradient taken at w + e is the one the optimizer steps with."""
        for p, offset in self._offsets.items():
            p.sub_(offset)
        self._offsets.clear()

    @contextlib.contextmanager
    def frozen_norm_statistics(self) -> Iterator[None]:
        """BatchNorm running statistics are left as the first pass set them: the second pass sees the same batch
        from perturbed weights, and counting it twice would pull the statistics towards w + e. The buffers are
        restored rather than the momentum zeroed, so that a compiled model sees no changed attribute (no
        recompile)."""
        norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        statistics = [b for m in norms for b in (m.running_mean, m.running_var, m.num_batches_tracked) if b is not None]
        saved = [b.clone() for b in statistics]
        try:
            yield
        finally:
            with torch.no_grad():
                for b, before in zip(statistics, saved):
                    b.copy_(before)
