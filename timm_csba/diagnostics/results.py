"""What the diagnostics measure, as dataclasses that round-trip through diagnostics.json."""
import math
import typing
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from .branches import AttentionOverlap
from .conflict import ConflictSummary, conflict_matrices, conflict_summary, spearman

__all__ = ['ParameterSetConflict', 'BranchGradients', 'F1Correlation', 'LossGap', 'Diagnostics', 'RunDiagnostics',
           'to_jsonable']


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
