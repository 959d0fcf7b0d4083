"""Run an exported ONNX model (`python -m timm_csba.export`) through ONNX Runtime behind the interface the rest of
the package uses for a timm model: `OnnxModel(path)(x)` gives the logits of a batch, its `pretrained_cfg` the eval
transform and the class names, so `predict`, `inspect` and the class activation maps take `--model model.onnx`.

The preprocessing an ONNX file cannot carry (input size, mean, std, interpolation, crop, class names) is read from
the `preprocessing.json` written beside it. ONNX Runtime is the optional `[onnx]` extra; it is imported when a
model is loaded, so the core install imports this module without it.
"""
import json
from pathlib import Path
from typing import Any, Dict, Tuple

import torch
import torch.nn as nn

__all__ = ['ONNX_SUFFIX', 'PREPROCESSING_FILE', 'LOGITS', 'CLASS_MAPS', 'OnnxModelError', 'OnnxModel',
           'is_onnx_path', 'read_preprocessing']

ONNX_SUFFIX = '.onnx'
PREPROCESSING_FILE = 'preprocessing.json'
INPUT = 'input'
LOGITS = 'logits'
CLASS_MAPS = 'class_maps'  # the exact class activation maps of the csba heads that are linear before pooling
# what the eval transform reads from a timm pretrained_cfg (timm.data.resolve_data_config)
TRANSFORM_KEYS = ('input_size', 'interpolation', 'mean', 'std', 'crop_pct', 'crop_mode')


class OnnxModelError(ValueError):
    """An ONNX model that cannot be run here; the message names the fix."""


def is_onnx_path(name: str) -> bool:
    return name.lower().endswith(ONNX_SUFFIX)


def read_preprocessing(onnx_path: Path) -> Dict[str, Any]:
    """The preprocessing.json beside an exported model.onnx."""
    path = Path(onnx_path).with_name(PREPROCESSING_FILE)
    if not path.is_file():
        raise OnnxModelError(f'{onnx_path} has no {PREPROCESSING_FILE} beside it (its input size, mean, std and '
                             f'class names); export the model with python -m timm_csba.export MODEL --format onnx '
                             f'--out DIR, which writes both')
    try:
        config = json.loads(path.read_text())
        missing = [key for key in (*TRANSFORM_KEYS, 'label_names') if key not in config]
    except (json.JSONDecodeError, TypeError):
        config, missing = None, ['(not a JSON object)']
    if config is None or missing:
        raise OnnxModelError(f'{path} lacks {", ".join(missing)}; export the model again with '
                             f'python -m timm_csba.export')
    return config


class OnnxModel(nn.Module):
    """An exported model run by ONNX Runtime on CPU, presented as a timm classifier in eval mode: `forward` gives
    the logits [B, C] (float32, computed in fp32 whatever the input's dtype), `class_maps` the exact class maps
    where the export has them."""

    def __init__(self, path: str, threads: int = 0):
        super().__init__()
        try:  # the [onnx] extra
            import onnxruntime
        except ModuleNotFoundError:
            raise OnnxModelError(f'running {path} needs ONNX Runtime: pip install "timm_csba[onnx]"') from None
        self.path = Path(path)
        if not self.path.is_file():
            raise OnnxModelError(f'{path} does not exist; pass an exported model.onnx '
                                 f'(python -m timm_csba.export MODEL --format onnx --out DIR)')
        config = read_preprocessing(self.path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's default, one per core
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), options, providers=['CPUExecutionProvider'])
        except Exception as e:  # ORT raises its own Fail/InvalidGraph types for a file it cannot read
            raise OnnxModelError(f'ONNX Runtime cannot load {path} ({str(e).splitlines()[0]}); export the model '
                                 f'again with python -m timm_csba.export') from None
        self.output_names = [output.name for output in self.session.get_outputs()]
        self.architecture = config.get('architecture', self.path.stem)
        self.num_classes = len(config['label_names'])
        self.in_chans = config['input_size'][0]
        self.pretrained_cfg = {**{key: config[key] for key in TRANSFORM_KEYS}, 'num_classes': self.num_classes,
                               'label_names': config['label_names']}
        self.default_cfg = self.pretrained_cfg
        self.eval()

    @property
    def has_class_maps(self) -> bool:
        return CLASS_MAPS in self.output_names

    def _run(self, x: torch.Tensor, outputs) -> list:
        feed = {INPUT: x.detach().to('cpu', torch.float32).contiguous().numpy()}
        return [torch.from_numpy(v) for v in self.session.run(outputs, feed)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, [LOGITS])[0].to(x.device)

    def class_maps(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(logits [B, C], class maps [B, C, h, w] whose spatial means are the logits)."""
        if not self.has_class_maps:
            raise OnnxModelError(f'{self.path} was exported without class maps ({self.architecture}\'s head is not '
                                 f'linear before pooling, so its maps need Grad-CAM); use the PyTorch model for them')
        logits, maps = self._run(x, [LOGITS, CLASS_MAPS])
        return logits.to(x.device), maps.to(x.device)

    def __repr__(self) -> str:
        return f'OnnxModel({self.path}, outputs={self.output_names})'
