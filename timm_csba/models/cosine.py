"""A normalised (cosine) classifier for any timm model: logits = s * cos(w_c, x), the last layer of LDAM-DRW as Cao
et al. (2019) publish it (their NormedLinear, s = 30). LDAM's margins are in cosine units on it (losses.py).

`use_cosine_classifier(model, scale)` turns a model's classifier into one in place, the way timm swaps a layer's
class: the parameters and the state_dict keys stay the classifier's, so a checkpoint loads as before. The bias is
set to zero and frozen (the published layer has none); folded logit offsets (calibration.py) may later move it.

For the csba heads, the normalisation goes on each branch: every branch's 1x1 conv takes the cosine between its
class weights and the features it sees (each branch sees its own gated features, so the branches' sum is no single
linear map whose cosine could be taken), and the branch cosines are averaged, so the logits are s times a mean of
cosines, within [-s, s] as with one normalised layer. (gradnorm's softmax weights already sum to 1.) The
per-class heads variant has no single class-weight vector per class and has no cosine form.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ['CosineLinear', 'CosineConv2d', 'use_cosine_classifier']

EPS = 1e-12


class CosineLinear(nn.Linear):
    """nn.Linear whose output is scale * cos(weight_c, x) + bias (bias zero and frozen unless offsets are folded)."""
    scale: float = 30.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cosine = F.linear(F.normalize(x, dim=-1, eps=EPS), F.normalize(self.weight, dim=1, eps=EPS))
        return self.scale * cosine + (self.bias if self.bias is not None else 0)


class CosineConv2d(nn.Conv2d):
    """A 1x1 nn.Conv2d whose output is share * scale * cos(weight_c, x) + bias at every position, x normalised over
    channels. `norm` replaces x's own norm (the exact class map of a pooled head divides the unpooled map by the
    pooled vector's norm, so that the map's mean is the logit)."""
    scale: float = 30.0
    share: float = 1.0  # a branch's part of the head's mean of cosines

    def forward(self, x: torch.Tensor, norm: Optional[torch.Tensor] = None) -> torch.Tensor:
        norm = x.norm(dim=1, keepdim=True) if norm is None else norm
        weight = F.normalize(self.weight, dim=1, eps=EPS)
        logits = F.conv2d(x / norm.clamp_min(EPS), weight) * (self.share * self.scale)
        return logits + self.bias.view(1, -1, 1, 1) if self.bias is not None else logits


def _swap(layer: nn.Module, cls: type, scale: float, zero_bias: bool, **attributes) -> None:
    layer.__class__ = cls
    layer.scale = scale
    for name, value in attributes.items():
        setattr(layer, name, value)
    if layer.bias is not None:
        if zero_bias:
            with torch.no_grad():
                layer.bias.zero_()
        layer.bias.requires_grad_(False)


def use_cosine_classifier(model: nn.Module, scale: float = 30.0, zero_bias: bool = True) -> None:
    """Make `model`'s classifier a normalised one with logits scale * cos (module docstring); ValueError, naming the
    model, for a classifier without that form. `zero_bias=False` keeps loaded biases (weights trained so)."""
    if not scale > 0:
        raise ValueError(f'the cosine classifier\'s scale must be positive (Cao et al. use 30), got {scale}')
    # a csba head is found by its branches, so that this module needs not import the model's
    classifier = model.get_classifier()
    branches = getattr(classifier, 'branches', None)
    if branches is not None:
        share = 1.0 if getattr(classifier, 'branch_weights', None) is not None else 1.0 / len(branches)
        for branch in branches:
            if not (isinstance(branch.fc, nn.Conv2d) and branch.fc.kernel_size == (1, 1)):
                raise ValueError(f'{type(model).__name__}: a branch classifier of {type(branch.fc).__name__}')
            _swap(branch.fc, CosineConv2d, scale, zero_bias, share=share)
    elif isinstance(classifier, nn.Linear):
        _swap(classifier, CosineLinear, scale, zero_bias)
    elif isinstance(classifier, nn.Conv2d) and classifier.kernel_size == (1, 1) and classifier.groups == 1:
        _swap(classifier, CosineConv2d, scale, zero_bias)
    else:
        raise ValueError(f'no cosine classifier for {type(model).__name__}: its classifier is a '
                         f'{type(classifier).__name__}, not one linear layer (csba_squeeze_heads has one head per '
                         f'class); train it with another loss than LDAM, or pick a model with a linear classifier')
