"""Gradient-conflict diagnostics: the paper's Gradient Conflict Matrix and the referee's companions.

Per-class gradients g_c = grad_theta L_c, where L_c is the run's loss restricted to the samples of class c
(times the class's loss weight), averaged over every sample of c in the split. The model runs in eval mode
(BatchNorm running statistics, dropout off) and samples are batched *within* a class, so each batch needs one
backward and a class's gradient does not depend on batch size or process count (float tolerance).

Matrices, for classes i, j:
    cosine       cos(g_i, g_j): direction only (paper Eq. 12, 31-32); negative = destructive interference.
    projection   <g_i, g_j> / |g_j|^2: how far a step along g_i moves along g_j, in units of g_j. Asymmetric;
                 it shows a large majority gradient swamping a small minority one even at a mild angle.
    magnitude    cos(g_i, g_j) * 2|g_i||g_j| / (|g_i|^2 + |g_j|^2): cosine shrunk towards 0 as the norms
                 differ (the gradient-magnitude similarity of PCGrad); equals the cosine for equal norms.
A class absent from the split has NaN in its row and column (listed in `absent_classes`), never a silent 0.
"""
import itertools
import math
import re
import typing
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn

__all__ = [
    'select_parameters', 'class_batches', 'per_class_gradients', 'conflict_matrices', 'conflict_summary',
    'branch_gradient_shares', 'attention_overlap', 'class_mean_features', 'angle_matrix', 'spearman',
    'plot_matrix', 'plot_comparison', 'analyze', 'to_jsonable', 'branch_parameter_sets',
    'attention_gates', 'ConflictSummary', 'ParameterSetConflict', 'BranchGradients', 'AttentionOverlap',
    'F1Correlation', 'LossGap', 'Diagnostics', 'RunDiagnostics',
]


# ------------------------------------------------------------------------------------------------ parameters


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


# ------------------------------------------------------------------------------------------------ gradients


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


# ------------------------------------------------------------------------------------------------ matrices


def conflict_matrices(grads: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Return cosine, projection and magnitude-aware matrices [C, C] and per-class gradient norms [C]."""
    norms = grads.norm(dim=1)
    dots = grads @ grads.T
    outer = norms[:, None] * norms[None, :]
    cosine = dots / outer
    return {
        'cosine': cosine,
        'projection': dots / (norms[None, :] ** 2),
        'magnitude': cosine * 2 * outer / (norms[:, None] ** 2 + norms[None, :] ** 2),
        'norms': norms,
    }


@dataclass
class ConflictSummary:
    """Off-diagonal statistics of one conflict matrix, and its k most negative majority-minority pairs."""
    mean_off_diagonal: float
    std_off_diagonal: float
    k: int
    most_negative_pairs: List[Dict[str, Any]]  # {'majority': i, 'minority': j, 'value': v}, most negative first
    mean_most_negative_pairs: float


def conflict_summary(matrix: torch.Tensor, counts: Sequence[float], k: int = 6) -> ConflictSummary:
    """Mean and std of the off-diagonal entries, and the mean of the k most negative majority-minority pairs
    (majority: classes with at least the median count; paper Table 4)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    present = np.flatnonzero(counts > 0)
    off = np.array([matrix[i, j] for i in present for j in present if i != j])
    median = np.median(counts[present]) if len(present) else 0
    majority = [i for i in present if counts[i] >= median]
    minority = [i for i in present if counts[i] < median]
    pairs = sorted(((matrix[i, j], int(i), int(j)) for i in majority for j in minority), key=lambda t: t[0])[:k]
    return ConflictSummary(
        mean_off_diagonal=float(off.mean()) if off.size else math.nan,
        std_off_diagonal=float(off.std()) if off.size else math.nan,
        k=k,
        most_negative_pairs=[{'majority': i, 'minority': j, 'value': float(v)} for v, i, j in pairs],
        mean_most_negative_pairs=float(np.mean([v for v, _, _ in pairs])) if pairs else math.nan,
    )


# ------------------------------------------------------------------------------------------------ branches


def branch_parameter_sets(model: nn.Module) -> Dict[str, List[str]]:
    """{'branch0': [...], ...} for a csba_* multi-branch head (gate + classifier of each branch), else {}."""
    head = model.get_classifier() if hasattr(model, 'get_classifier') else None
    if head is None or not hasattr(head, 'branches'):
        return {}
    prefix = {id(p): n for n, p in model.named_parameters()}
    return {f'branch{b}': [prefix[id(p)] for p in branch.parameters()] for b, branch in enumerate(head.branches)}


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


# ------------------------------------------------------------------------------------------------ geometry


def class_mean_features(sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    return sums / counts[:, None]


def angle_matrix(means: torch.Tensor) -> torch.Tensor:
    """Pairwise angles in degrees between class-mean feature vectors (paper Eq. 27)."""
    unit = means / means.norm(dim=1, keepdim=True)
    return torch.rad2deg(torch.arccos((unit @ unit.T).clamp(-1, 1)))


def spearman(x: Sequence[float], y: Sequence[float]) -> Dict[str, float]:
    """Spearman rank correlation of paired values (NaN pairs dropped) with the number of pairs it rests on."""
    from scipy.stats import spearmanr
    pairs = [(a, b) for a, b in zip(x, y) if not (math.isnan(a) or math.isnan(b))]
    if len(pairs) < 3:
        return {'rho': math.nan, 'p_value': math.nan, 'n': len(pairs)}
    result = spearmanr([a for a, _ in pairs], [b for _, b in pairs])
    return {'rho': float(result.statistic), 'p_value': float(result.pvalue), 'n': len(pairs)}


# ------------------------------------------------------------------------------------------------ pictures


def _heatmap(ax, matrix, names, title, vmax=1.0, fmt='{:.2f}'):
    matrix = np.asarray(matrix, dtype=np.float64)
    image = ax.imshow(matrix, cmap='RdBu_r', vmin=-vmax, vmax=vmax)  # diverging, centred at 0
    ax.set_xticks(range(len(names)), names, rotation=35, ha='right')
    ax.set_yticks(range(len(names)), names)
    ax.set_title(title)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            value = matrix[i, j]
            ax.text(j, i, 'n/a' if math.isnan(value) else fmt.format(value), ha='center', va='center',
                    fontsize=8, color='white' if abs(value) > 0.6 * vmax else 'black')
    return image


def plot_matrix(matrix, names: Sequence[str], path: Path, title: str) -> None:
    """Annotated heatmap of one [C, C] matrix, diverging colour map centred at 0, class names on the axes."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    size = max(4.0, 0.9 * len(names) + 1.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    fig.colorbar(_heatmap(ax, matrix, names, title), ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_comparison(before, after, names: Sequence[str], path: Path, labels: Sequence[str], title: str) -> None:
    """Two matrices side by side and their difference (after - before)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    size = max(4.0, 0.9 * len(names) + 1.5)
    fig, axes = plt.subplots(1, 3, figsize=(3 * size, size))
    _heatmap(axes[0], before, names, labels[0])
    _heatmap(axes[1], after, names, labels[1])
    image = _heatmap(axes[2], np.asarray(after) - np.asarray(before), names, f'{labels[1]} - {labels[0]}')
    for ax in axes[1:]:
        ax.set_yticklabels([])
    fig.colorbar(image, ax=axes, fraction=0.02)
    fig.suptitle(title)
    fig.savefig(path, dpi=120, bbox_inches='tight')
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ everything


@dataclass
class ParameterSetConflict:
    """The conflict matrices [C, C] of one parameter set, its per-class gradient norms [C] and the summaries of
    the cosine and magnitude-aware matrices."""
    num_params: int
    cosine: torch.Tensor
    projection: torch.Tensor
    magnitude: torch.Tensor
    grad_norms: torch.Tensor
    summary: Dict[str, ConflictSummary]  # 'cosine', 'magnitude'

    @classmethod
    def of(cls, grads: torch.Tensor, counts: torch.Tensor, k: int) -> 'ParameterSetConflict':
        mats = conflict_matrices(grads)
        return cls(num_params=grads.shape[1], cosine=mats['cosine'], projection=mats['projection'],
                   magnitude=mats['magnitude'], grad_norms=mats['norms'],
                   summary={kind: conflict_summary(mats[kind], counts, k) for kind in ('cosine', 'magnitude')})

    def row_mean_cosine(self) -> List[float]:
        """Each class's mean cosine with the other classes (the diagonal left out)."""
        cosine = self.cosine.clone()
        cosine.fill_diagonal_(float('nan'))
        return cosine.nanmean(1).tolist()


@dataclass
class BranchGradients:
    """[B, C] per-branch per-class gradient norms of a multi-branch head, each class's shares over the branches,
    and the branch with the largest share per class."""
    grad_norms: torch.Tensor
    grad_shares: torch.Tensor
    dominant_branch: List[int]


@dataclass
class F1Correlation:
    """Does a class's gradient conflict predict its F1? Spearman over the classes of one run."""
    row_mean_cosine: List[float]
    test_f1: List[float]
    rho: float
    p_value: float
    n: int


@dataclass
class LossGap:
    """Train and validation loss at a run's selected epoch; their difference is the generalisation gap
    (paper Eq. 54)."""
    epoch: int
    train_loss: float
    val_loss: float
    generalization_gap: float

    @classmethod
    def at_epoch(cls, history: Sequence[Dict[str, Any]], epoch: int) -> 'LossGap':
        record = next(r for r in history if r['epoch'] == epoch)
        return cls(epoch=epoch, train_loss=record['train_loss'], val_loss=record['val_loss'],
                   generalization_gap=record['val_loss'] - record['train_loss'])


@dataclass
class Diagnostics:
    """Everything `analyze` measures on one model and split."""
    class_names: List[str]
    samples_per_class: List[int]
    absent_classes: List[str]
    parameter_sets: Dict[str, ParameterSetConflict]
    class_mean_angles_deg: torch.Tensor
    branches: Optional[BranchGradients] = None  # csba_* multi-branch heads only
    attention: Optional[AttentionOverlap] = None  # heads with attention gates only

    def conflict_vs_f1(self, f1: Sequence[float]) -> Dict[str, F1Correlation]:
        """Per parameter set: Spearman between each class's mean cosine with the others and its F1."""
        out = {}
        for name, stats in self.parameter_sets.items():
            row = stats.row_mean_cosine()
            out[name] = F1Correlation(row_mean_cosine=row, test_f1=list(f1), **spearman(row, f1))
        return out

    def to_json(self) -> Dict[str, Any]:
        return to_jsonable(self)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> 'Diagnostics':
        return _from_json(cls, data)


@dataclass
class RunDiagnostics:
    """What `python -m timm_csba.diagnose` reports on one model folder: the model's diagnostics and, where the
    folder is a train.py run's best/, what the run adds (per-class F1 correlation, loss gap); with --compare, the
    other model's diagnostics and, for two runs, how much lower this one's training loss is (paper Eq. 55)."""
    model_dir: str
    checkpoint_sha256: str
    architecture: Optional[str]
    dataset: str
    split: str
    params: str
    diagnostics: Diagnostics
    conflict_vs_f1: Optional[Dict[str, F1Correlation]] = None
    losses: Optional[LossGap] = None
    compare_dir: Optional[str] = None
    compare: Optional[Diagnostics] = None
    optimization_improvement: Optional[float] = None

    @staticmethod
    def optimization_gain(baseline: Optional[LossGap], model: Optional[LossGap]) -> Optional[float]:
        """The baseline's training loss minus the model's, at their selected epochs (None unless both known)."""
        return baseline.train_loss - model.train_loss if baseline and model else None

    def to_json(self) -> Dict[str, Any]:
        """diagnostics.json: the run's fields with the model's diagnostics at the top level, `compare` holding
        the other model's with its folder."""
        out = {f.name: to_jsonable(getattr(self, f.name)) for f in fields(self)
               if f.name not in ('diagnostics', 'compare', 'compare_dir')}
        out.update(self.diagnostics.to_json())
        if self.compare is not None:
            out['compare'] = {'model_dir': self.compare_dir, **self.compare.to_json()}
        return out

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> 'RunDiagnostics':
        data = dict(data)
        compare = data.pop('compare', None)
        own = {f.name for f in fields(cls)}
        diagnostics = Diagnostics.from_json({k: v for k, v in data.items() if k not in own})
        run = _from_json(cls, {k: v for k, v in data.items() if k in own and k != 'diagnostics'},
                         diagnostics=diagnostics)
        if compare is not None:
            compare = dict(compare)
            run.compare_dir, run.compare = compare.pop('model_dir', None), Diagnostics.from_json(compare)
        return run


def _from_json(cls, data: Dict[str, Any], **given) -> Any:
    """A dataclass from its to_json form: nested dataclasses rebuilt, tensors from lists (null -> NaN)."""
    hints = typing.get_type_hints(cls)
    values = dict(given)
    for f in fields(cls):
        if f.name in given or f.name not in data:
            continue
        values[f.name] = _value_from_json(hints[f.name], data[f.name])
    return cls(**values)


def _value_from_json(hint: Any, value: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:  # Optional[X]: null is None
        return None if value is None else _value_from_json(next(a for a in args if a is not type(None)), value)
    if hint is float:
        return math.nan if value is None else float(value)  # to_jsonable writes NaN as null
    if hint is torch.Tensor:
        return torch.tensor(np.array(value, dtype=np.float64))
    if is_dataclass(hint):
        return _from_json(hint, value)
    if origin is dict:
        return {k: _value_from_json(args[1], v) for k, v in value.items()}
    if origin is list:
        return [_value_from_json(args[0], v) for v in value]
    return value


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


def to_jsonable(obj: Any) -> Any:
    """Dataclasses to dicts, tensors and arrays to (nested) lists, NaN to None, recursively."""
    if is_dataclass(obj):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        return to_jsonable(obj.tolist())
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj
