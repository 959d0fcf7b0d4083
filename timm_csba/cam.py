"""Where the model sees the defect: a class activation map per image, for the class it predicts (or any other).

The sum, csba, shared and gradnorm heads of the CSBA family are linear before their average pool: the logits are
GAP(sum_b w_b * W_b (a_b * F)) with each gate a_b read from GAP(F). Applying the branch 1x1 convs to the feature
map F itself, with the gates read from the pooled vector, gives a map per class whose spatial mean is the logit
exactly (a CAM, Zhou et al. 2016), from the same forward pass and no backward. Every other model, the
`csba_squeeze_heads` variant (a non-linear head per class) included, gets Grad-CAM (Selvaraju et al. 2017) through
the `grad-cam` package on its last feature stage. A model exported to ONNX (timm_csba.onnx_export) carries the
exact maps as a second output where its head has them; Grad-CAM needs gradients, so it needs the PyTorch model.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from timm.layers import SEModule

from .data.transforms import build_transforms
from .models import CosineConv2d
from .models.csba_squeeze import BranchClassifier, CsbaSqueeze
from .onnx_model import OnnxModel, OnnxModelError

__all__ = ['LINEAR_HEADS', 'CamError', 'has_exact_cam', 'has_maps', 'branch_class_maps', 'class_activation_maps',
           'overlay_heat', 'cam_overlays']

LINEAR_HEADS = ('sum', 'csba', 'shared', 'gradnorm')


class CamError(ValueError):
    """A model whose maps cannot be made here; the message names the fix."""


def has_exact_cam(model: nn.Module) -> bool:
    """Whether `model` is a CSBA model whose head is linear before an average pool (an exact CAM)."""
    return (isinstance(model, CsbaSqueeze) and model.head.head_type in LINEAR_HEADS
            and isinstance(model.head.fc, BranchClassifier) and model.head.global_pool.pool_type == 'avg')


def has_maps(model: nn.Module) -> bool:
    """Whether `class_activation_maps` can map `model`: any PyTorch model, an ONNX one exported with class maps."""
    return not isinstance(model, OnnxModel) or model.has_class_maps


def _gate(attn: nn.Module, pooled: torch.Tensor) -> torch.Tensor:
    """The per-channel gate an SE module multiplies its input by, read from the pooled features (1 for none)."""
    if isinstance(attn, nn.Identity):
        return torch.ones_like(pooled)
    if not isinstance(attn, SEModule):
        raise CamError(f'no exact CAM for a head gated by {type(attn).__name__}')
    return attn.gate(attn.fc2(attn.act(attn.bn(attn.fc1(pooled)))))


def branch_class_maps(model: CsbaSqueeze, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(logits [B, C], class maps [B, C, h, w]) of a linear-head CSBA model in eval mode; the maps' spatial means
    are the logits."""
    features = model.forward_features(x)
    classifier = model.head.fc
    pooled = model.head.global_pool(features)
    shared = _gate(classifier.attn, pooled)
    features, pooled = features * shared, pooled * shared
    maps = torch.stack([_branch_map(branch, features, pooled) for branch in classifier.branches])
    if classifier.branch_weights is not None:
        maps = maps * classifier.branch_weights.softmax(0).to(maps.dtype).view(-1, 1, 1, 1, 1)
    maps = maps.sum(0)
    return maps.mean((2, 3)), maps


def _branch_map(branch: nn.Module, features: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
    """A branch's 1x1 conv on the gated map; a cosine one divides by the pooled gated vector's norm, as the logit
    does, so that the map's mean stays the logit."""
    gate = _gate(branch.attn, pooled)
    if isinstance(branch.fc, CosineConv2d):
        return branch.fc(features * gate, norm=(pooled * gate).norm(dim=1, keepdim=True))
    return branch.fc(features * gate)


def _grad_cam(model: nn.Module, x: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    try:  # the [inspect] extra: only the models without an exact map need it
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ModuleNotFoundError:
        raise CamError(f'maps of {type(model).__name__} need Grad-CAM: pip install "timm_csba[inspect]" (the '
                       f'grad-cam package)') from None
    info = getattr(model, 'feature_info', None)
    if not info:
        raise CamError(f'{type(model).__name__} has no feature_info to name its last feature stage for Grad-CAM')
    layer = model.get_submodule(info[-1]['module'])
    with torch.enable_grad(), GradCAM(model=model, target_layers=[layer]) as cam:
        heat = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(c)) for c in classes])
    return torch.from_numpy(heat).float()


def class_activation_maps(model: nn.Module, x: torch.Tensor,
                          classes: Optional[Sequence[int]] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """(class probabilities [B, C], heat maps [B, H, W] in [0, 1] at the input's size) for `classes` (default: each
    image's predicted class): the exact CAM where the head allows it, Grad-CAM otherwise."""
    model.eval()
    size = x.shape[-2:]
    if has_exact_cam(model) or isinstance(model, OnnxModel):
        try:
            with torch.no_grad():
                logits, maps = model.class_maps(x) if isinstance(model, OnnxModel) else branch_class_maps(model, x)
        except OnnxModelError as e:
            raise CamError(str(e)) from None
        chosen = logits.argmax(1) if classes is None else torch.as_tensor(classes)
        heat = maps[torch.arange(len(x)), chosen].float().unsqueeze(1)
        heat = F.interpolate(heat, size=size, mode='bilinear', align_corners=False).squeeze(1)
        low, high = heat.amin((1, 2), keepdim=True), heat.amax((1, 2), keepdim=True)
        return logits.float().softmax(1), (heat - low) / (high - low).clamp_min(1e-12)
    with torch.no_grad():
        probabilities = model(x).float().softmax(1)
    chosen = probabilities.argmax(1) if classes is None else torch.as_tensor(classes)
    return probabilities, _grad_cam(model, x, chosen.tolist())


def _heat_colours(heat: np.ndarray) -> np.ndarray:
    """An RGB colour map of values in [0, 1]: dark blue through red to yellow (uint8 [H, W, 3])."""
    stops = np.array([[0, 0, 80], [0, 90, 200], [230, 40, 40], [255, 230, 60]], dtype=float)
    position = np.clip(heat, 0, 1) * (len(stops) - 1)
    low = np.floor(position).astype(int).clip(0, len(stops) - 2)
    weight = (position - low)[..., None]
    return np.round(stops[low] * (1 - weight) + stops[low + 1] * weight).astype(np.uint8)


def overlay_heat(cell: Image.Image, heat: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """The cell with its heat map (any size, resized to the cell's) laid over it."""
    heat_image = Image.fromarray(np.round(np.clip(heat, 0, 1) * 255).astype(np.uint8)).resize(
        cell.size, Image.Resampling.BILINEAR)
    coloured = Image.fromarray(_heat_colours(np.asarray(heat_image, dtype=float) / 255))
    return Image.blend(cell.convert('RGB'), coloured, alpha)


def cam_overlays(model: nn.Module, images: Sequence[Image.Image], batch_size: int = 32) -> List[Image.Image]:
    """Each image with the heat map of its predicted class laid over it, through the model's eval transform."""
    transform = build_transforms(model, is_training=False)
    device = next(model.parameters(), torch.empty(0)).device  # an OnnxModel has none: CPU
    overlays = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        _, heat = class_activation_maps(model, torch.stack([transform(image) for image in batch]).to(device))
        overlays += [overlay_heat(image, h) for image, h in zip(batch, heat.cpu().numpy())]
    return overlays
