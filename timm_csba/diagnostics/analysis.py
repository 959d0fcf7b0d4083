"""`analyze`: one pass over a split that measures every diagnostic of a model."""
from typing import Any, Callable, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn

from .branches import attention_gates, attention_overlap, branch_gradient_shares, branch_parameter_sets
from .conflict import angle_matrix, class_mean_features
from .gradients import per_class_gradients, select_parameters
from .results import BranchGradients, Diagnostics, ParameterSetConflict

__all__ = ['analyze']


def analyze(
        model: nn.Module,
        dataset: torch.utils.data.Dataset,
        labels: Sequence[int],
        class_names: Sequence[str],
        criterion: Optional[nn.Module] = None,
        params: Union[str, Sequence[str]] = 'backbone',
        batch_size: int = 32,
        num_workers: int = 0,
        max_batches: Optional[int] = None,
        top_k: int = 6,
        attention_top_k: int = 96,
        accelerator: Any = None,
        progress: Optional[Callable] = None,
) -> Diagnostics:
    """One pass over the split: per-class gradients of every parameter, then the conflict matrices of the chosen
    parameter set(s) (`params`: one `select_parameters` choice or several, e.g. ('backbone', 'layerwise')), branch
    gradient shares and attention overlap (csba_* heads), class-mean feature angles."""
    num_classes = len(class_names)
    sets = {name: names for which in ([params] if isinstance(params, str) else params)
            for name, names in select_parameters(model, which).items()}
    branches = branch_parameter_sets(model)
    gates = attention_gates(model)
    device = accelerator.device if accelerator is not None else next(model.parameters()).device
    feature_sums = torch.zeros(num_classes, model.num_features, dtype=torch.float64, device=device)
    attn_sums = torch.zeros(len(gates), num_classes, model.num_features, dtype=torch.float64, device=device)
    gate_outputs: List[torch.Tensor] = []
    hooks = [g.register_forward_hook(lambda m, i, o: gate_outputs.append(o.detach())) for g in gates]

    def collect(features, logits, c):
        feature_sums[c] += model.forward_head(features, pre_logits=True).double().sum(0)
        for b, out in enumerate(gate_outputs):
            attn_sums[b, c] += out.flatten(1).double().sum(0)
        gate_outputs.clear()

    try:
        result = per_class_gradients(
            model, dataset, labels, num_classes, criterion, batch_size=batch_size, num_workers=num_workers,
            max_batches=max_batches, accelerator=accelerator, progress=progress, extra=collect)
    finally:
        for hook in hooks:
            hook.remove()
    if accelerator is not None:
        feature_sums, attn_sums = accelerator.reduce(feature_sums, 'sum'), accelerator.reduce(attn_sums, 'sum')
    grads, counts = result['grads'], result['counts']
    offsets = dict(zip(result['names'], np.cumsum([0, *result['sizes'].tolist()])[:-1].tolist()))
    sizes = dict(zip(result['names'], result['sizes'].tolist()))

    def columns(names):
        return grads[:, torch.cat([torch.arange(offsets[n], offsets[n] + sizes[n]) for n in names])]

    out = Diagnostics(
        class_names=list(class_names),
        samples_per_class=counts.long().tolist(),
        absent_classes=[class_names[c] for c in range(num_classes) if counts[c] == 0],
        parameter_sets={name: ParameterSetConflict.of(columns(names), counts, top_k) for name, names in sets.items()},
        class_mean_angles_deg=angle_matrix(class_mean_features(feature_sums.cpu(), counts)),
    )
    if branches:
        norms = torch.stack([columns(names).norm(dim=1) for names in branches.values()])
        shares = branch_gradient_shares(norms)
        out.branches = BranchGradients(grad_norms=norms, grad_shares=shares, dominant_branch=shares.argmax(0).tolist())
    if gates:
        attention = (attn_sums / counts.to(attn_sums)[None, :, None]).float().cpu()
        out.attention = attention_overlap(attention, attention_top_k)
    return out
