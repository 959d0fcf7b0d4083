"""Score a model on a dataset split as train.py scores its test split: class probabilities in split order through
the model's own eval transform (optionally test-time augmented), and train.py's metrics from them."""
from typing import Any, Dict, Optional, Tuple

import datasets
import torch

from .data.hf_splits import attach_transform
from .data.transforms import build_transforms
from .inference import tta_probabilities
from .metrics import classification_metrics

__all__ = ['split_probabilities', 'evaluate_split']


def split_probabilities(model: torch.nn.Module, split: datasets.Dataset, tta: str = 'none', batch_size: int = 64,
                        device: Optional[torch.device] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """(labels [N], class probabilities [N, C]) of `model` on a dataset split (image + label), in split order,
    preprocessed with the model's eval transform."""
    device = device or torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    model = model.to(device).eval()
    loader = torch.utils.data.DataLoader(attach_transform(split, build_transforms(model, is_training=False)),
                                         batch_size=batch_size)
    probabilities, labels = [], []
    with torch.inference_mode():
        for batch in loader:
            probabilities.append(tta_probabilities(model, batch['pixel_values'].to(device), tta).float().cpu())
            labels.append(batch['label'])
    return torch.cat(labels), torch.cat(probabilities)


def evaluate_split(model: torch.nn.Module, split: datasets.Dataset, tta: str = 'none', batch_size: int = 64,
                   device: Optional[torch.device] = None) -> Dict[str, Any]:
    """Metrics of `model` on a dataset split (image + label), preprocessed with the model's eval transform."""
    labels, probabilities = split_probabilities(model, split, tta, batch_size, device)
    return classification_metrics(labels, probabilities.argmax(-1), split.features['label'].names)
