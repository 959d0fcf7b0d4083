"""What a csba_* multi-branch head shows: each branch's share of a class's gradient, and how alike the branches'
attention gates are per class."""
import math
from dataclasses import dataclass
from typing import Dict, List

import torch
import torch.nn as nn

__all__ = ['branch_parameter_sets', 'branch_gradient_shares', 'attention_gates', 'AttentionOverlap',
           'attention_overlap']


def branch_parameter_sets(model: nn.Module) -> Dict[str, List[str]]:
    """{'branch0': [...], ...} for a csba_* multi-branch head (gate + classifier of each branch), else {}; trained
    parameters only (a cosine classifier's bias is frozen: it has no gradient)."""
    head = model.get_classifier() if hasattr(model, 'get_classifier') else None
    if head is None or not hasattr(head, 'branches'):
        return {}
    prefix = {id(p): n for n, p in model.named_parameters()}
    return {f'branch{b}': [prefix[id(p)] for p in branch.parameters() if p.requires_grad]
            for b, branch in enumerate(head.branches)}


def branch_gradient_shares(norms: torch.Tensor) -> torch.Tensor:
    """[B, C] per-branch per-class gradient norms -> each class's shares over branches (columns sum to 1;
    uniform routing is 1/B everywhere, paper Table 5)."""
    return norms / norms.sum(0, keepdim=True)


def attention_gates(model: nn.Module) -> List[nn.Module]:
    """The sigmoid gate modules of the branch attention (one per branch for CSBA, one shared), else []."""
    head = model.get_classifier() if hasattr(model, 'get_classifier') else None
    if head is None or not hasattr(head, 'branches'):
        return []
    gates = [branch.attn.gate for branch in head.branches if hasattr(branch.attn, 'gate')]
    return gates or ([head.attn.gate] if hasattr(head.attn, 'gate') else [])


@dataclass
class AttentionOverlap:
    """Per class, how alike the branches' attention is: Jaccard overlap of their top-k channels and cosine of
    their class-mean attention vectors ([C, B, B] each)."""
    num_gates: int
    top_k: int
    jaccard: torch.Tensor
    cosine: torch.Tensor


def attention_overlap(attention: torch.Tensor, top_k: int = 96) -> AttentionOverlap:
    """For [B, C, D] class-mean attention vectors: per class, the pairwise Jaccard overlap of the branches'
    top-k channels and the cosine of their attention vectors ([C, B, B] each)."""
    branches, classes, _ = attention.shape
    top = attention.topk(top_k, dim=-1).indices
    jaccard = torch.full((classes, branches, branches), math.nan)
    cosine = torch.full((classes, branches, branches), math.nan)
    for c in range(classes):
        if torch.isnan(attention[:, c]).any():
            continue
        sets = [set(top[b, c].tolist()) for b in range(branches)]
        for a in range(branches):
            for b in range(branches):
                jaccard[c, a, b] = len(sets[a] & sets[b]) / len(sets[a] | sets[b])
        unit = attention[:, c] / attention[:, c].norm(dim=-1, keepdim=True)
        cosine[c] = unit @ unit.T
    return AttentionOverlap(num_gates=branches, top_k=top_k, jaccard=jaccard, cosine=cosine)
