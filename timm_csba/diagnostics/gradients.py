"""Per-class gradients: g_c = grad_theta L_c, where L_c is the run's loss restricted to the samples of class c
(times the class's loss weight), averaged over every sample of c in the split.

The model runs in eval mode (BatchNorm running statistics, dropout off) and samples are batched *within* a class,
so each batch needs one backward and a class's gradient does not depend on batch size or process count (float
tolerance).
"""
import itertools
import re
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

__all__ = ['select_parameters', 'class_batches', 'per_class_gradients']


def _layer_name(param_name: str, stages: Sequence[str]) -> str:
    """The feature stage a parameter belongs to ('stages.2.1.squeeze.conv.weight' -> 'stages.2', resnet's
    'layer1.0.conv1.weight' -> 'layer1'), else its top-level module ('head.fc...' -> 'head')."""
    for stage in stages:
        if param_name.startswith(stage + '.'):
            return stage
    return param_name.split('.', 1)[0]


def select_parameters(model: nn.Module, which: str = 'backbone') -> Dict[str, List[str]]:
    """Return {set name: parameter names} for 'all', 'backbone' (everything but the classifier), 'layerwise'
    (one set per feature stage of the model's feature_info, e.g. stem, stages.0, ..., and one per other top-level
    module, e.g. head) or a regular expression on parameter names."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    if which == 'all':
        return {'all': names}
    if which in ('backbone', 'layerwise'):
        head_ids = {id(p) for p in model.get_classifier().parameters()} if hasattr(model, 'get_classifier') else set()
        params = dict(model.named_parameters())
        backbone = [n for n in names if id(params[n]) not in head_ids and not n.startswith('head')]
        if which == 'backbone':
            return {'backbone': backbone}
        stages = [info['module'] for info in getattr(model, 'feature_info', [])]
        groups: Dict[str, List[str]] = {}
        for n in names:
            groups.setdefault(_layer_name(n, stages), []).append(n)
        return groups
    matched = [n for n in names if re.search(which, n)]
    if not matched:
        raise ValueError(f'--params {which!r} matches no parameter of the model; names look like {names[0]!r}, '
                         f'{names[-1]!r}. Use all, backbone, layerwise or another regular expression.')
    return {which: matched}


def class_batches(labels: Sequence[int], batch_size: int, rank: int = 0, world_size: int = 1) -> List[List[int]]:
    """Index batches that each hold one class only, for this process's share (every world_size-th sample of a
    class). Classes take turns, so the first N batches cover every class (for --max-batches)."""
    labels = np.asarray(labels)
    per_class = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)[rank::world_size]
        per_class.append([members[i:i + batch_size].tolist() for i in range(0, len(members), batch_size)])
    return [b for turn in itertools.zip_longest(*per_class) for b in turn if b]


def _loss_weight(criterion: nn.Module, num_classes: int) -> torch.Tensor:
    weight = getattr(criterion, 'weight', None)
    return torch.ones(num_classes) if weight is None else weight.detach().float().cpu()


def per_class_gradients(
        model: nn.Module,
        dataset: torch.utils.data.Dataset,
        labels: Sequence[int],
        num_classes: int,
        criterion: Optional[nn.Module] = None,
        param_names: Optional[Sequence[str]] = None,
        batch_size: int = 32,
        num_workers: int = 0,
        max_batches: Optional[int] = None,
        accelerator: Any = None,
        device: Any = None,
        progress: Optional[Callable] = None,
        extra: Optional[Callable] = None,
) -> Dict[str, torch.Tensor]:
    """Return {'grads': [C, P] float64 per-class mean gradients (NaN rows for absent classes), 'counts': [C]}.

    `dataset[i]` yields {'pixel_values', 'label'}; `labels` are its labels (to batch by class without decoding).
    With `accelerator`, each process takes its share and the sums are reduced across processes. `extra(features,
    logits, label)` is called for every batch (inside no_grad) to collect other per-class statistics.
    """
    criterion = criterion if criterion is not None else nn.CrossEntropyLoss()
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator is not None else (0, 1)
    device = accelerator.device if accelerator is not None else (device or next(model.parameters()).device)
    params = dict(model.named_parameters())
    names = list(param_names) if param_names is not None else [n for n, p in params.items() if p.requires_grad]
    chosen = [params[n] for n in names]
    sizes = [p.numel() for p in chosen]
    weight = _loss_weight(criterion, num_classes)

    grads = torch.zeros(num_classes, sum(sizes), dtype=torch.float64, device=device)
    counts = torch.zeros(num_classes, dtype=torch.float64, device=device)
    batches = class_batches(labels, batch_size, rank, world)
    if max_batches is not None:
        batches = batches[:max_batches]
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=num_workers)
    was_training = model.training
    model.eval()  # running BN statistics and no dropout: a sample's gradient does not depend on its batch
    for batch in (progress(loader) if progress else loader):
        x, y = batch['pixel_values'].to(device), batch['label'].to(device)
        c = int(y[0])
        features = model.forward_features(x)
        logits = model.forward_head(features)
        if extra is not None:
            with torch.no_grad():
                extra(features.detach(), logits.detach(), c)
        # the loss over one class is that class's mean per-sample loss; times n gives the sum, and the class's
        # loss weight scales it as in the training objective
        loss = criterion(logits.float(), y) * len(y) * weight[c].item()
        batch_grads = torch.autograd.grad(loss, chosen, allow_unused=True)
        flat = torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).double()
                          for g, p in zip(batch_grads, chosen)])
        grads[c] += flat
        counts[c] += len(y)
    model.train(was_training)
    if accelerator is not None:
        grads, counts = accelerator.reduce(grads, 'sum'), accelerator.reduce(counts, 'sum')
    grads = grads / counts[:, None]  # absent class: 0 / 0 = NaN row, by design
    return {'grads': grads.cpu(), 'counts': counts.cpu(), 'sizes': torch.tensor(sizes), 'names': names}
