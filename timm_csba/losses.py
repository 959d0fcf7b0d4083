"""Losses for class-imbalanced classification, each a `nn.Module(logits, target) -> scalar`.

    ce               class-weighted cross-entropy (paper Eq. 2-3), optional label smoothing
    focal            focal loss with class weights (Lin et al. 2017; the paper's Variant II)
    logit_adjusted   logit-adjusted loss: CE on logits + tau * log(prior) (Menon et al. 2021);
                     tau = 1 is the balanced softmax (Ren et al. 2020). The prior is that of the batches the
                     model trains on: a class-aware sampler's, not the split's, when one draws them
    ldam             label-distribution-aware margins with deferred re-weighting (Cao et al. 2019)
    ordinal          soft ordinal labels (SORD, Diaz & Marathe 2019): cross-entropy against a target that puts
                     mass on the neighbouring grades, for classes that are ordered grades (ELPV's 0, 1/3, 2/3, 1)

Weighted losses average as `F.cross_entropy(weight=...)` does: sum_i w_yi * l_i / sum_i w_yi, so focal loss
with gamma=0 equals weighted CE.
"""
import inspect
from typing import Any, Mapping, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data.imbalance import SAMPLERS, weights_from_counts

__all__ = [
    'LOSSES', 'SOFT_TARGET_LOSSES', 'FocalLoss', 'LogitAdjustedLoss', 'LDAMLoss', 'OrdinalSoftLabelLoss', 'create_loss',
    'LOSS_OPTIONS', 'EARLIER_DEFAULTS', 'check_loss_config', 'create_loss_from_config',
]

LOSSES = ('ce', 'focal', 'logit_adjusted', 'ldam', 'ordinal')
# the losses that also take soft targets ([N, C] class probabilities, e.g. from mixup / cutmix)
SOFT_TARGET_LOSSES = ('ce', 'ordinal')


def _weighted_mean(per_sample: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor]) -> torch.Tensor:
    if weight is None:
        return per_sample.mean()
    w = weight.to(per_sample.dtype)[target]
    return (w * per_sample).sum() / w.sum()


class FocalLoss(nn.Module):
    """-w_y (1 - p_y)^gamma log p_y: down-weights examples the model already classifies confidently."""

    def __init__(self, weight: Optional[torch.Tensor] = None, gamma: float = 2.0):
        super().__init__()
        self.register_buffer('weight', weight, persistent=False)
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.float(), dim=1).gather(1, target[:, None]).squeeze(1)
        per_sample = -((1 - log_p.exp()) ** self.gamma) * log_p
        return _weighted_mean(per_sample, target, self.weight)


class LogitAdjustedLoss(nn.Module):
    """Cross-entropy on logits + tau * log(class prior); predictions use the raw logits."""

    def __init__(self, class_counts: Sequence[int], tau: float = 1.0, weight: Optional[torch.Tensor] = None):
        super().__init__()
        counts = torch.as_tensor(class_counts, dtype=torch.float32)
        self.register_buffer('adjustment', tau * torch.log(counts / counts.sum()), persistent=False)
        self.register_buffer('weight', weight, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float() + self.adjustment, target, weight=self.weight)


class LDAMLoss(nn.Module):
    """LDAM: subtract a margin m_y proportional to n_y^(-1/4) (largest = max_margin) from the true-class logit,
    scale by s, then cross-entropy. With deferred re-weighting (DRW), class weights (effective number,
    beta=0.9999) switch on after `drw_epoch` epochs; call `set_epoch` with the number of epochs completed at the
    start of every epoch. That is how timm's schedulers count their decay milestones, so drw_epoch 160 with a
    milestone at 160 re-weights from the first epoch at the decayed learning rate, as Cao et al.'s code does.
    Re-weighting one epoch earlier, at the full rate, moves the tail's 77-fold weights with 100 times the step and
    wrecks the model (Fashion-MNIST-LT: validation balanced accuracy 0.84 -> 0.55 in that epoch; studies/fmnist_lt).

    The default s = 1 is for a classifier's raw logits, which is what timm models and the CSBA heads emit. Cao et
    al.'s s = 30 belongs with their normalised last layer, whose cosine logits lie in [-1, 1]; on raw logits it
    makes the softmax 30 times sharper and the margins 30 times wider (ELPV, LDAM-DRW without a sampler: train loss
    6-10 and best validation macro-F1 0.48 at s = 30, train loss near 1 and 0.61 at s = 1; studies/elpv_recipe).
    As published, the model's classifier is the normalised one (models/cosine.py), which emits s * cos itself:
    then `margin_unit` = s puts the margins in cosine units, CE(s * (cos - m)) exactly, with `scale` 1."""

    def __init__(
            self,
            class_counts: Sequence[int],
            max_margin: float = 0.5,
            scale: float = 1.0,
            drw_epoch: Optional[int] = None,
            drw_beta: float = 0.9999,
            margin_unit: float = 1.0,
    ):
        super().__init__()
        counts = torch.as_tensor(class_counts, dtype=torch.float64)
        margins = counts ** -0.25
        margins = margins * (max_margin / margins.max()) * margin_unit
        self.register_buffer('margins', margins.float(), persistent=False)
        self.register_buffer('drw_weight', weights_from_counts(class_counts, 'effective_number', drw_beta),
                             persistent=False)
        self.scale = scale
        self.drw_epoch = drw_epoch
        self.weight: Optional[torch.Tensor] = None

    def set_epoch(self, epochs_done: int) -> None:
        self.weight = self.drw_weight if self.drw_epoch is not None and epochs_done >= self.drw_epoch else None

    @property
    def reweighted(self) -> bool:
        return self.weight is not None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        margin = F.one_hot(target, logits.shape[1]) * self.margins
        return F.cross_entropy(self.scale * (logits - margin), target, weight=self.weight)


class OrdinalSoftLabelLoss(nn.Module):
    """Cross-entropy against soft ordinal targets q_k proportional to exp(-scale * (g_k - g_y)^2), with the
    classes' grades g_k = k / (C - 1) evenly spaced on [0, 1] (SORD, Diaz & Marathe 2019, "Soft Labels for
    Ordinal Regression"). A 1/3-grade cell then also teaches "near 0 and 2/3, far from 1": errors between
    neighbouring grades cost less than errors across the scale, and the model stays a C-way classifier, so
    prediction is the argmax and everything downstream is unchanged. scale -> infinity is plain CE; class
    weights weigh each sample by its true class, as in the other losses."""

    def __init__(self, num_classes: int, scale: float = 10.0, weight: Optional[torch.Tensor] = None):
        super().__init__()
        if num_classes < 2 or scale <= 0:
            raise ValueError(f'the ordinal loss needs >= 2 classes and a positive scale, got {num_classes}, {scale}.')
        grades = torch.linspace(0, 1, num_classes)
        targets = torch.softmax(-scale * (grades[None, :] - grades[:, None]) ** 2, dim=1)  # row y: target of class y
        self.register_buffer('targets', targets, persistent=False)
        self.register_buffer('weight', weight, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.float(), dim=1)
        if target.dim() == 1:
            return _weighted_mean(-(self.targets[target] * log_p).sum(1), target, self.weight)
        # soft targets (mixup): mix the grades' soft labels, and their class weights, in the same proportions
        per_sample = -((target.float() @ self.targets) * log_p).sum(1)
        if self.weight is None:
            return per_sample.mean()
        weight = target.float() @ self.weight
        return (weight * per_sample).sum() / weight.sum()


def _check_options(name: str, class_weights: Optional[str], sampler: str, options: Mapping[str, Any]) -> None:
    """Raise ValueError for an unknown loss or sampler, or an option the loss would ignore (never a silent no-op)."""
    if name not in LOSSES:
        raise ValueError(f'Unknown loss {name!r}; choose one of {", ".join(LOSSES)}.')
    if sampler not in SAMPLERS:
        raise ValueError(f'Unknown sampler {sampler!r}; choose one of {", ".join(SAMPLERS)}.')
    ignored = [key for key, value in options.items() if name not in LOSS_OPTIONS[key] and value != _DEFAULTS[key]]
    if ignored:
        raise ValueError(f'the {name} loss ignores {", ".join(ignored)}; drop '
                         f'{", ".join("--" + k.replace("_", "-") for k in ignored)} or choose the loss that uses it '
                         f'({", ".join(sorted({loss for k in ignored for loss in LOSS_OPTIONS[k]}))}).')
    if class_weights and name == 'ldam':
        raise ValueError(f'the ldam loss ignores class weights (deferred re-weighting brings its own); pass '
                         f'--class-weights none (got {class_weights!r}).')


def create_loss(
        name: str,
        class_counts: Sequence[int],
        class_weights: Optional[str] = 'inverse',
        label_smoothing: float = 0.0,
        focal_gamma: float = 2.0,
        la_tau: float = 1.0,
        ldam_max_margin: float = 0.5,
        ldam_scale: float = 1.0,
        drw_epoch: Optional[int] = None,
        ordinal_scale: float = 10.0,
        sampler: str = 'none',
        cosine_scale: Optional[float] = None,
) -> nn.Module:
    """Return the loss `name` for a train split with `class_counts`; class weights are 'inverse',
    'sqrt_inverse', 'effective_number' or None (LDAM ignores them: DRW brings its own). `sampler` names the
    class-aware sampler that draws the batches (data.SAMPLERS), whose label distribution the logit adjustment
    removes: under 'balanced' sampling every class is equally likely and the adjustment is a constant.
    `cosine_scale` is the scale of the model's normalised classifier, if it has one: LDAM's margins are then in
    cosine units (scaled by it), as Cao et al. publish them."""
    _check_options(name, class_weights, sampler, dict(
        label_smoothing=label_smoothing, focal_gamma=focal_gamma, la_tau=la_tau, ldam_max_margin=ldam_max_margin,
        ldam_scale=ldam_scale, drw_epoch=drw_epoch, ordinal_scale=ordinal_scale))
    weight = weights_from_counts(class_counts, class_weights) if class_weights else None
    if name == 'ce':
        return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
    if name == 'focal':
        return FocalLoss(weight=weight, gamma=focal_gamma)
    if name == 'logit_adjusted':
        sampled_counts = [n ** SAMPLERS[sampler] for n in class_counts]  # class c drawn in proportion to n_c^q
        return LogitAdjustedLoss(sampled_counts, tau=la_tau, weight=weight)
    if name == 'ordinal':
        return OrdinalSoftLabelLoss(len(class_counts), scale=ordinal_scale, weight=weight)
    return LDAMLoss(class_counts, max_margin=ldam_max_margin, scale=ldam_scale, drw_epoch=drw_epoch,
                    margin_unit=cosine_scale or 1.0)


# which losses use each option; the others must leave it at its default (_DEFAULTS, create_loss's own)
LOSS_OPTIONS = {'label_smoothing': ('ce',), 'focal_gamma': ('focal',), 'la_tau': ('logit_adjusted',),
                'ldam_max_margin': ('ldam',), 'ldam_scale': ('ldam',), 'drw_epoch': ('ldam',),
                'ordinal_scale': ('ordinal',)}
_DEFAULTS = {key: inspect.signature(create_loss).parameters[key].default for key in LOSS_OPTIONS}
_CONFIG_OPTIONS = ('label_smoothing', 'focal_gamma', 'la_tau', 'ldam_max_margin', 'ldam_scale', 'drw_epoch',
                   'ordinal_scale', 'sampler', 'cosine_scale')
# what an option defaulted to in earlier versions: a run's args.yaml records every option, so an older run resumed
# (or diagnosed) with another loss carries it, and it was no choice (LDAM's scale defaulted to 30 until 2026-12-05)
EARLIER_DEFAULTS = {'ldam_scale': 30.0}


def _config_arguments(config: Mapping[str, Any], recorded: bool) -> tuple:
    """(name, class_weights, options) of create_loss from a train.py config; see create_loss_from_config."""
    name = config.get('loss', 'ce')
    weights = config.get('class_weights', 'inverse')
    options = {key: config[key] for key in _CONFIG_OPTIONS if config.get(key) is not None}
    if recorded:
        earlier_defaults = [key for key, value in options.items()
                            if name not in LOSS_OPTIONS.get(key, (name,)) and value == EARLIER_DEFAULTS.get(key)]
        for key in earlier_defaults:
            del options[key]
    return name, None if weights == 'none' else weights, options


def check_loss_config(config: Mapping[str, Any], recorded: bool = False) -> None:
    """Raise ValueError where create_loss_from_config would, before the data (and its class counts) is loaded."""
    name, class_weights, options = _config_arguments(config, recorded)
    sampler = options.pop('sampler', 'none')
    _check_options(name, class_weights, sampler, options)  # options left out are at their defaults


def create_loss_from_config(config: Mapping[str, Any], class_counts: Sequence[int],
                            recorded: bool = False) -> nn.Module:
    """Return the loss a train.py config describes (its args or a run's args.yaml; missing keys take defaults).

    `recorded`: the config is a run's args.yaml (a resumed or diagnosed run), where an option the loss ignores may
    hold an earlier version's default; a new run's config that sets it is refused like any ignored option.
    """
    name, class_weights, options = _config_arguments(config, recorded)
    return create_loss(name, class_counts, class_weights=class_weights, **options)
