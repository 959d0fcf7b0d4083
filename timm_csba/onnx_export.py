"""Export a timm model to ONNX with timm's exporter (`timm.utils.onnx.onnx_export`): `model.onnx` with a dynamic
batch axis at the model's input size, the preprocessing it needs in `preprocessing.json` beside it, and a check of
ONNX Runtime against PyTorch on real images before the export counts as done.

The csba heads that are linear before pooling export a second output, `class_maps`: the exact class activation
maps (timm_csba.cam) whose spatial means are the logits, so `inspect` run through ONNX Runtime still shows where
each defect is. Needs the `[onnx]` extra (onnx, onnxruntime).
"""
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch
import torch.nn as nn
from PIL import Image
from timm.data import resolve_data_config
from timm.utils.onnx import onnx_export

from .cam import branch_class_maps, has_exact_cam
from .data.transforms import build_transforms
from .inference import label_names
from .onnx_model import CLASS_MAPS, INPUT, LOGITS, TRANSFORM_KEYS, OnnxModel

__all__ = ['ExportError', 'onnx_preprocessing', 'export_onnx', 'compare_logits', 'check_export']


class ExportError(ValueError):
    """A model or an export that fails its check; the message names the fix."""


class _LogitsAndClassMaps(nn.Module):
    """A linear-head CSBA model whose forward returns (logits, class maps), for a two-output export."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        return branch_class_maps(self.model, x)


def onnx_preprocessing(model: nn.Module, source: str, source_config: Optional[Dict[str, Any]] = None
                       ) -> Dict[str, Any]:
    """What a runtime without timm needs to feed the exported model: its input, the eval transform's settings
    (resize the shorter side to input_size / crop_pct with `interpolation`, centre-crop to input_size, scale to
    [0, 1], subtract mean, divide by std, in `in_chans` channels), the class names and the outputs."""
    data_config = resolve_data_config(model=model)
    in_chans = getattr(model, 'in_chans', data_config['input_size'][0])
    config = {key: data_config[key] for key in TRANSFORM_KEYS}
    config['input_size'] = [in_chans, *data_config['input_size'][1:]]
    config['mean'], config['std'] = list(config['mean']), list(config['std'])
    offsets = (source_config or {}).get('logit_offsets')
    return {
        'architecture': getattr(model, 'pretrained_cfg', {}).get('architecture', type(model).__name__),
        'source': source,
        'input': {'name': INPUT, 'shape': ['batch', *config['input_size']], 'dtype': 'float32'},
        'outputs': [LOGITS, CLASS_MAPS] if has_exact_cam(model) else [LOGITS],
        **config,
        'in_chans': in_chans,
        'label_names': label_names(model),
        # offsets fitted on validation live in the classifier's biases already: the exported logits include them
        'logit_offsets_folded': offsets,
    }


def export_onnx(model: nn.Module, path: Path, input_size: Sequence[int], opset: Optional[int] = None) -> None:
    """Write `model` (in eval mode, fp32) to `path` as ONNX with a dynamic batch axis, checked by onnx's checker;
    a linear-head CSBA model with its class maps as a second output."""
    model = model.eval().float().cpu()
    two_outputs = has_exact_cam(model)
    with warnings.catch_warnings():
        # the models' channel-count check is a Python comparison the tracer records as a constant: the exported
        # graph takes exactly in_chans channels, which is what the check enforces
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        onnx_export(_LogitsAndClassMaps(model) if two_outputs else model, str(path), input_size=tuple(input_size),
                    batch_size=2, opset=opset, input_names=[INPUT],
                    output_names=[LOGITS, CLASS_MAPS] if two_outputs else [LOGITS], check=True)


def compare_logits(model: nn.Module, onnx_model: OnnxModel, images: Sequence[Image.Image],
                   batch_size: int = 64) -> Dict[str, Any]:
    """PyTorch (fp32) against ONNX Runtime on `images` through the model's eval transform: how many top-1 classes
    agree and the largest absolute logit difference."""
    model = model.eval().float().cpu()
    transform = build_transforms(model, is_training=False)
    same, largest = 0, 0.0
    for start in range(0, len(images), batch_size):
        x = torch.stack([transform(image) for image in images[start:start + batch_size]])
        with torch.inference_mode():
            expected = model(x).float()
        got = onnx_model(x)
        same += int((expected.argmax(1) == got.argmax(1)).sum())
        largest = max(largest, float((expected - got).abs().max()))
    return {'images': len(images), 'top1_identical': same, 'max_abs_logit_difference': largest}


def check_export(report: Dict[str, Any], where: str) -> None:
    """Raise ExportError unless every checked image got the same top-1 class from ONNX Runtime as from PyTorch."""
    if report['top1_identical'] != report['images']:
        raise ExportError(f'ONNX Runtime and PyTorch disagree on the top-1 class of '
                          f'{report["images"] - report["top1_identical"]} of {report["images"]} images of {where} '
                          f'(largest logit difference {report["max_abs_logit_difference"]:.3g}); nothing was written. '
                          f'Try another --opset, and report it with the model name')

