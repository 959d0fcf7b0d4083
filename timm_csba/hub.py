"""Hugging Face Hub format: export a trained model as a timm Hub folder (model.safetensors + config.json).

The folder loads with `timm.create_model('local-dir:PATH', pretrained=True)` and is what gets pushed to the Hub.
"""
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch
from safetensors.torch import save_file
from timm.models._hub import save_config_for_hf

from .files import replace_dir

__all__ = ['save_pretrained']


def save_pretrained(
        model: torch.nn.Module,
        directory: os.PathLike,
        label_names: Sequence[str],
        data_config: Dict[str, Any],
        model_args: Optional[Dict[str, Any]] = None,
) -> Path:
    """Write `model` to `directory` in timm's Hub format, atomically (a complete folder or the previous one).

    `data_config` is the preprocessing the weights were trained with (input_size, mean, std, interpolation,
    crop_pct); it becomes the pretrained_cfg that `timm.data.resolve_data_config` returns for the export.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{directory.name}.', dir=directory.parent))
    # contiguous copies: a channels_last model's conv weights are strided, which safetensors refuses
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / 'model.safetensors'))
    save_config_for_hf(
        model,
        str(tmp / 'config.json'),
        model_config=dict(label_names=list(label_names)),
        model_args=model_args,
        data_config=data_config,
    )
    replace_dir(tmp, directory)
    return directory
