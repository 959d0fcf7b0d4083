""" CSBA-Squeeze: Class-Specific Branch Attention on a tri-path SqueezeNet

A SqueezeNet-style backbone whose Fire modules expand through three parallel paths (1x1, 3x3, 3x3),
followed by a three-branch classifier whose branch outputs are summed. CSBA gives every branch its own
bias-free squeeze-excitation gate so that the branches see different channel subsets of the shared
768-d representation, which decouples the per-class gradients flowing into the backbone under class
imbalance.

Variants (one model class, selected by `head_type`):
    csba_squeeze           'csba'      a private SE gate per branch (the paper's CSBA)
    csba_squeeze_sum       'sum'       plain branch sum (the paper's baseline)
    csba_squeeze_shared    'shared'    one SE gate shared by all branches (capacity control)
    csba_squeeze_gradnorm  'gradnorm'  softmax-normalised learnable branch weights
    csba_squeeze_heads     'heads'     one two-layer head per class (hard decoupling)

Deliberate departures from the paper's text, each exact where it matters:
    * The head pools first and applies the branches to the pooled vector. Average pooling commutes with
      the 1x1 branch convs and the SE gate reads only the pooled vector, so at eval this equals the paper's
      map-level head (sum of branch maps, then GAP) exactly; in training, the per-branch dropout acts on
      the pooled features (timm's convention) instead of on the map.
    * The two 3x3 expand paths of a Fire run as one conv with 2e outputs and share one BatchNorm with the
      1x1 path over the concatenation. BatchNorm is per channel and Kaiming init depends only on fan-in, so
      parameters, function and init distribution are those of three separate conv-BN-act paths.

Paper: "Class-Specific Branch Attention for Mitigating Gradient Interference under Class Imbalance"
(sections 3-4: the tri-path backbone, the branch classifier and the CSBA gates).

Licensed under the Apache License 2.0.
"""
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn

from timm.layers import BatchNormAct2d, ConvNormAct, SEModule, SelectAdaptivePool2d, get_device_dtype
from timm.models import (build_model_with_cfg, checkpoint, checkpoint_seq, generate_default_cfgs, register_model,
                         register_notrace_function)
# private: timm exports no public twin of the index resolver every timm model's forward_intermediates uses, and ours
# must resolve `indices` exactly as timm's do (pyproject bounds timm above for it)
from timm.models._features import feature_take_indices

from .cosine import use_cosine_classifier

__all__ = ['CsbaSqueeze', 'TriPathFire', 'BranchClassifier', 'ClassSpecificHeads', 'CsbaHead', 'HEAD_TYPES']

HF_HUB_ORG = 'timm-csba'

# (squeeze, expand) per Fire module, grouped into the stages that end at each feature tap. Every stage
# but the last starts with a stride-2 max pool; the last keeps the spatial size (paper Table 3).
FIRE_STAGES = (
    ((16, 64), (16, 64)),      # F1, F2 -> 192 ch, stride 4
    ((32, 128), (32, 128)),    # F3, F4 -> 384 ch, stride 8
    ((48, 192), (48, 192)),    # F5, F6 -> 576 ch, stride 16
    ((64, 256), (64, 256)),    # F7, F8 -> 768 ch, stride 16
)
STEM_CHS = 64
HEAD_TYPES = ('csba', 'sum', 'shared', 'gradnorm', 'heads')


@register_notrace_function
def check_in_chans(x: torch.Tensor, in_chans: int) -> None:
    """Raise a ValueError naming the fix when the input channel count differs from the model's."""
    # public name: torch.fx only auto-wraps (leaves untraced) module globals that do not start with "_"
    if x.shape[1] != in_chans:
        raise ValueError(
            f'Input has {x.shape[1]} channels but the model was created with in_chans={in_chans}. '
            f'Convert the images (e.g. torchvision.transforms.Grayscale(num_output_channels={in_chans})) '
            f'or create the model with in_chans={x.shape[1]}.'
        )


class TriPathFire(nn.Module):
    """Fire module with three expand paths (1x1, 3x3, 3x3) over one squeeze: in_chs -> 3 * expand_chs."""

    def __init__(
            self,
            in_chs: int,
            squeeze_chs: int,
            expand_chs: int,
            act_layer: str = 'leaky_relu',
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.out_chs = 3 * expand_chs
        self.squeeze = ConvNormAct(in_chs, squeeze_chs, 1, act_layer=act_layer, **dd)
        self.expand1x1 = nn.Conv2d(squeeze_chs, expand_chs, 1, bias=False, **dd)
        # both 3x3 paths in one conv: same params and fan-in as two convs, one pass over the input
        self.expand3x3 = nn.Conv2d(squeeze_chs, 2 * expand_chs, 3, padding=1, bias=False, **dd)
        self.bn = BatchNormAct2d(self.out_chs, act_layer=act_layer, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze(x)
        x = torch.cat([self.expand1x1(x), self.expand3x3(x)], dim=1)
        return self.bn(x)


class ClassifierBranch(nn.Module):
    """One branch of the head: optional channel gate -> dropout -> 1x1 conv to class logits."""

    def __init__(
            self,
            in_features: int,
            num_classes: int,
            attn: Optional[nn.Module] = None,
            drop_rate: float = 0.,
            device=None,
            dtype=None,
    ):
        super().__init__()
        self.attn = attn if attn is not None else nn.Identity()
        self.drop = nn.Dropout(drop_rate)  # each branch draws its own mask, as in the paper
        self.fc = nn.Conv2d(in_features, num_classes, 1, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.attn(x)))


class BranchClassifier(nn.Module):
    """Parallel classifier branches over (pooled) features whose logits are summed.

    `attention` picks what each branch sees: 'csba' a private bias-free SE gate per branch,
    'shared' one gate for all branches, 'none' the features as they are. `weighted` scales the branch
    logits by softmax(w), w learnable and initially equal (GradNorm-style scalar reweighting).
    """

    def __init__(
            self,
            in_features: int,
            num_classes: int,
            num_branches: int = 3,
            attention: str = 'csba',
            attn_chs: int = 96,
            weighted: bool = False,
            drop_rate: float = 0.,
            device=None,
            dtype=None,
    ):
        dd = {'device': device, 'dtype': dtype}
        super().__init__()
        self.in_features = in_features
        self.num_classes = num_classes

        def gate():
            return SEModule(in_features, rd_channels=attn_chs, bias=False, **dd)

        self.attn = gate() if attention == 'shared' else nn.Identity()
        self.branches = nn.ModuleList([
            ClassifierBranch(in_features, num_classes, gate() if attention == 'csba' else None, drop_rate, **dd)
            for _ in range(num_branches)])
        self.branch_weights = nn.Parameter(torch.zeros(num_branches, **dd)) if weighted else None

    def reset(self, num_classes: int) -> None:
        """Replace the class-dependent 1x1 convs; gates and branch weights are kept."""
        dd = get_device_dtype(self)
        self.num_classes = num_classes
        for branch in self.branches:
            branch.fc = nn.Conv2d(self.in_features, num_classes, 1, **dd).train(self.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attn(x)
        logits = torch.stack([branch(x) for branch in self.branches])
        if self.branch_weights is not None:
            # softmax runs in fp32 under autocast; cast back so the weights do not upcast the logits
            logits = logits * self.branch_weights.softmax(0).to(logits.dtype).view(-1, 1, 1, 1, 1)
        return logits.sum(0)


class ClassSpecificHeads(nn.Module):
    """One independent two-layer head per class (1x1 conv -> LeakyReLU -> dropout -> 1x1 conv to one
    logit); logits are concatenated. Run as one conv plus one grouped conv so every class's weights
    stay disjoint (hard gradient isolation) without a Python loop over classes."""

    def __init__(
            self,
            in_features: int,
            num_classes: int,
            hidden_chs: int = 1344,
            drop_rate: float = 0.,
            device=None,
            dtype=None,
    ):
        super().__init__()
        self.in_features = in_features
        self.hidden_chs = hidden_chs
        self.act = nn.LeakyReLU(inplace=True)
        self.drop = nn.Dropout(drop_rate)
        self.hidden = nn.Identity()
        self.fc = nn.Identity()
        self.reset(num_classes, device=device, dtype=dtype)

    def reset(self, num_classes: int, device=None, dtype=None) -> None:
        """Rebuild all heads: every parameter here belongs to exactly one class."""
        dd = get_device_dtype(self, device=device, dtype=dtype)
        self.num_classes = num_classes
        self.hidden = nn.Conv2d(self.in_features, num_classes * self.hidden_chs, 1, **dd)
        self.fc = nn.Conv2d(num_classes * self.hidden_chs, num_classes, 1, groups=num_classes, **dd)
        self.hidden.train(self.training)
        self.fc.train(self.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.act(self.hidden(x))))


class CsbaHead(nn.Module):
    """Global pool, then a multi-branch classifier on the pooled map; pre-logits are the pooled features."""

    def __init__(
            self,
            in_features: int,
            num_classes: int,
            pool_type: str = 'avg',
            head_type: str = 'csba',
            drop_rate: float = 0.,
            attn_chs: int = 96,
            class_head_chs: int = 1344,
            device=None,
            dtype=None,
    ):
        super().__init__()
        self.in_features = in_features
        self.head_type = head_type
        self.drop_rate = drop_rate
        self.attn_chs = attn_chs
        self.class_head_chs = class_head_chs
        # the classifier runs on an NCHW map either way (1x1 pooled, or unpooled for pool ''), flattened after
        self.global_pool = SelectAdaptivePool2d(pool_type=pool_type, flatten=False)
        self.flatten = nn.Flatten(1) if pool_type else nn.Identity()
        self.num_features = in_features * self.global_pool.feat_mult()
        self.fc = self._make_classifier(num_classes, device=device, dtype=dtype)

    def _make_classifier(self, num_classes: int, device=None, dtype=None) -> nn.Module:
        dd = {'device': device, 'dtype': dtype}
        if num_classes <= 0:
            return nn.Identity()
        if self.head_type == 'heads':
            return ClassSpecificHeads(self.num_features, num_classes, self.class_head_chs, self.drop_rate, **dd)
        return BranchClassifier(
            self.num_features,
            num_classes,
            attention=self.head_type if self.head_type in ('csba', 'shared') else 'none',
            attn_chs=self.attn_chs,
            weighted=self.head_type == 'gradnorm',
            drop_rate=self.drop_rate,
            **dd,
        )

    def reset(
            self,
            num_classes: int,
            pool_type: Optional[str] = None,
            in_features: Optional[int] = None,
            device=None,
            dtype=None,
    ) -> None:
        """Set a new class count (0 removes the classifier), pooling (None keeps it) or input width."""
        dd = get_device_dtype(self, device=device, dtype=dtype)
        if in_features is not None:
            self.in_features = in_features
        if pool_type is not None:
            self.global_pool = SelectAdaptivePool2d(pool_type=pool_type, flatten=False)
            self.flatten = nn.Flatten(1) if pool_type else nn.Identity()
        num_features = self.in_features * self.global_pool.feat_mult()
        if num_classes > 0 and isinstance(self.fc, BranchClassifier) and num_features == self.num_features:
            self.fc.reset(num_classes)  # keep the (class-independent) gates, e.g. when fine-tuning
        else:
            self.num_features = num_features
            self.fc = self._make_classifier(num_classes, **dd)
        self.train(self.training)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        if pre_logits:
            return self.flatten(x)
        return self.flatten(self.fc(x))


class CsbaSqueeze(nn.Module):
    """Tri-path SqueezeNet backbone with a multi-branch (CSBA) classification head."""

    def __init__(
            self,
            num_classes: int = 1000,
            in_chans: int = 3,
            global_pool: str = 'avg',
            head_type: str = 'csba',
            drop_rate: float = 0.5,
            attn_chs: int = 96,
            class_head_chs: int = 1344,
            act_layer: str = 'leaky_relu',
            cosine_scale: Optional[float] = None,
            device=None,
            dtype=None,
    ):
        """
        Args:
            num_classes: Number of classes; 0 removes the classifier (forward returns pooled features).
            in_chans: Number of input channels (1 for grayscale electroluminescence images).
            global_pool: Global pooling type; '' keeps the map (forward returns NCHW).
            head_type: One of HEAD_TYPES, see the module docstring.
            drop_rate: Per-branch dropout before each classifier branch.
            attn_chs: Bottleneck width of the branch SE gates (768 / 8 = 96 in the paper).
            class_head_chs: Hidden width of each per-class head when head_type='heads'.
            act_layer: Backbone activation (LeakyReLU, slope 0.01, in the paper).
            cosine_scale: A normalised classifier, logits = cosine_scale * the branches' mean cosine (models/cosine.py;
                Cao et al.'s LDAM layer, s = 30); None for the plain 1x1 convs.
        """
        super().__init__()
        if head_type not in HEAD_TYPES:
            raise ValueError(f'Unknown head_type {head_type!r}; choose one of {", ".join(HEAD_TYPES)}.')
        if num_classes < 0:
            raise ValueError(f'num_classes must be >= 1 (or 0 for a feature extractor), got {num_classes}.')
        if in_chans < 1:
            raise ValueError(f'in_chans must be >= 1, got {in_chans}.')
        dd = {'device': device, 'dtype': dtype}
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.head_type = head_type
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        self.stem = ConvNormAct(in_chans, STEM_CHS, 3, stride=2, act_layer=act_layer, **dd)
        self.feature_info = [dict(num_chs=STEM_CHS, reduction=2, module='stem')]
        stages = []
        prev_chs, reduction = STEM_CHS, 2
        for stage_idx, fire_cfgs in enumerate(FIRE_STAGES):
            # ceil_mode keeps the last row/column, as in SqueezeNet and the paper's stem
            blocks = [nn.MaxPool2d(3, stride=2, ceil_mode=True)] if stage_idx < len(FIRE_STAGES) - 1 else []
            reduction *= 2 if blocks else 1
            for squeeze_chs, expand_chs in fire_cfgs:
                blocks.append(TriPathFire(prev_chs, squeeze_chs, expand_chs, act_layer=act_layer, **dd))
                prev_chs = blocks[-1].out_chs
            stages.append(nn.Sequential(*blocks))
            self.feature_info.append(dict(num_chs=prev_chs, reduction=reduction, module=f'stages.{stage_idx}'))
        self.stages = nn.Sequential(*stages)
        self.num_features = prev_chs

        self.head = CsbaHead(
            self.num_features,
            num_classes,
            pool_type=global_pool,
            head_type=head_type,
            drop_rate=drop_rate,
            attn_chs=attn_chs,
            class_head_chs=class_head_chs,
            **dd,
        )
        self.head_hidden_size = self.head.num_features
        self.init_weights()
        self.cosine_scale = cosine_scale
        self._use_cosine_classifier()

    def _use_cosine_classifier(self) -> None:
        if self.cosine_scale is not None and self.num_classes > 0:
            use_cosine_classifier(self, self.cosine_scale)

    @torch.no_grad()
    def init_weights(self) -> None:
        """Kaiming-uniform convs (for the LeakyReLU slope), zero biases, BatchNorm weight 1 and bias 0."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, a=0.01, nonlinearity='leaky_relu')
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict[str, Any]:
        return dict(
            stem=r'^stem',
            blocks=r'^stages\.(\d+)' if coarse else [(r'^stages\.(\d+)\.(\d+)', None)],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None, device=None, dtype=None) -> None:
        if num_classes < 0:
            raise ValueError(f'num_classes must be >= 1 (or 0 to remove the classifier), got {num_classes}.')
        self.num_classes = num_classes
        # the head may hold no parameters (num_classes=0), so take device and dtype from the whole model
        self.head.reset(num_classes, global_pool, **get_device_dtype(self, device=device, dtype=dtype))
        self.head_hidden_size = self.head.num_features
        self._use_cosine_classifier()  # the new 1x1 convs normalised as the old ones were

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Forward features that also returns the feature taps (stem, then the end of each stage).

        Args:
            x: Input image tensor.
            indices: Take last n taps if int, all if None, select matching indices if sequence.
            norm: Unused, the model has no final norm (kept for API parity).
            stop_early: Stop after the last tap that was asked for.
            output_fmt: Shape of intermediate feature outputs ('NCHW' only).
            intermediates_only: Only return intermediate features.
        """
        assert output_fmt in ('NCHW',), 'Output shape must be NCHW.'
        check_in_chans(x, self.in_chans)
        intermediates = []
        take_indices, max_index = feature_take_indices(len(self.stages) + 1, indices)

        x = self.stem(x)
        if 0 in take_indices:
            intermediates.append(x)
        if torch.jit.is_scripting() or not stop_early:  # can't slice in torchscript
            stages = self.stages
        else:
            stages = self.stages[:max_index]
        for feat_idx, stage in enumerate(stages, start=1):
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(stage, x)
            else:
                x = stage(x)
            if feat_idx in take_indices:
                intermediates.append(x)

        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(
            self,
            indices: Union[int, List[int]] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> List[int]:
        """Drop the stages (and head) not needed for the given taps; returns the kept tap indices."""
        take_indices, max_index = feature_take_indices(len(self.stages) + 1, indices)
        prune_end = max_index < len(self.stages)
        self.stages = self.stages[:max_index]
        if prune_end:
            # features now end at the last kept tap, the head was sized for the final features so it goes too
            self.num_features = self.feature_info[max_index]['num_chs']
        if prune_end or prune_head:
            self.num_classes = 0
            self.head.reset(0, '', in_features=self.num_features)
            self.head_hidden_size = self.head.num_features
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_in_chans(x, self.in_chans)
        x = self.stem(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(self.stages, x)
        else:
            x = self.stages(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)
        x = self.forward_head(x)
        return x


def _create_csba_squeeze(variant: str, pretrained: bool = False, **kwargs) -> CsbaSqueeze:
    return build_model_with_cfg(
        CsbaSqueeze,
        variant,
        pretrained,
        feature_cfg=dict(flatten_sequential=True),
        **kwargs,
    )


def _cfg(head_type: str = 'csba', **kwargs) -> Dict[str, Any]:
    # the class-dependent layers, dropped by timm when fine-tuning to another class count
    if head_type == 'heads':
        classifier = ('head.fc.hidden', 'head.fc.fc')
    else:
        classifier = tuple(f'head.fc.branches.{i}.fc' for i in range(3))
    return {
        'num_classes': 4, 'input_size': (3, 224, 224), 'pool_size': (14, 14),
        'crop_pct': 1.0, 'interpolation': 'bilinear',
        'mean': (0.597, 0.597, 0.597), 'std': (0.161, 0.161, 0.161),
        'first_conv': 'stem.conv', 'classifier': classifier,
        **kwargs,
    }


def _elpv_cfg(variant: str, head_type: str) -> Dict[str, Any]:
    # ELPV cells are grayscale 300x300; like timm's own weights these are 3-channel (gray replicated) and
    # timm folds the first conv to in_chans=1 when asked. 96 px is the training size of the published
    # weights (configs/elpv_hub.yaml: many epochs at 96 px beat fewer at 128 and few at 224). Weights trained on
    # ELPV inherit its licence.
    # every tag's weights are staged in hub/<variant>.elpv/, the Hub repo at its hf_hub_id. timm's idiom for a
    # tag without weights is a cfg without a weights location (hf_hub_id None): timm.list_pretrained() then leaves
    # it out and `pretrained=True` raises timm's "No pretrained weights exist".
    return _cfg(
        head_type=head_type,
        input_size=(3, 96, 96), pool_size=(6, 6),
        hf_hub_id=f'{HF_HUB_ORG}/{variant}.elpv',
        label_names=('functional', 'possibly_defective', 'likely_defective', 'defective'),
        # the grades are the share of annotators who judged the cell defective
        label_descriptions={
            'functional': 'annotator defect probability 0', 'possibly_defective': 'annotator defect probability 1/3',
            'likely_defective': 'annotator defect probability 2/3', 'defective': 'annotator defect probability 1'},
        paper_name='Class-Specific Branch Attention for Mitigating Gradient Interference under Class Imbalance',
        license='cc-by-nc-sa-4.0',
        origin_url='https://github.com/zae-bayern/elpv-dataset',
    )


default_cfgs = generate_default_cfgs({
    'csba_squeeze.elpv': _elpv_cfg('csba_squeeze', 'csba'),
    'csba_squeeze_sum.elpv': _elpv_cfg('csba_squeeze_sum', 'sum'),
    'csba_squeeze_shared.elpv': _elpv_cfg('csba_squeeze_shared', 'shared'),
    'csba_squeeze_gradnorm.elpv': _elpv_cfg('csba_squeeze_gradnorm', 'gradnorm'),
    'csba_squeeze_heads.elpv': _elpv_cfg('csba_squeeze_heads', 'heads'),
})


@register_model
def csba_squeeze(pretrained: bool = False, **kwargs) -> CsbaSqueeze:
    """CSBA: a private bias-free SE gate (768 -> 96 -> 768) before each of the three branches."""
    model_args = dict(head_type='csba')
    return _create_csba_squeeze('csba_squeeze', pretrained, **dict(model_args, **kwargs))


@register_model
def csba_squeeze_sum(pretrained: bool = False, **kwargs) -> CsbaSqueeze:
    """The paper's baseline: three dropout + 1x1-conv branches, summed."""
    model_args = dict(head_type='sum')
    return _create_csba_squeeze('csba_squeeze_sum', pretrained, **dict(model_args, **kwargs))


@register_model
def csba_squeeze_shared(pretrained: bool = False, **kwargs) -> CsbaSqueeze:
    """Capacity control for CSBA: one SE gate shared by the three branches."""
    model_args = dict(head_type='shared')
    return _create_csba_squeeze('csba_squeeze_shared', pretrained, **dict(model_args, **kwargs))


@register_model
def csba_squeeze_gradnorm(pretrained: bool = False, **kwargs) -> CsbaSqueeze:
    """Branch logits scaled by softmax(w), w learnable and initially equal (3 extra parameters)."""
    model_args = dict(head_type='gradnorm')
    return _create_csba_squeeze('csba_squeeze_gradnorm', pretrained, **dict(model_args, **kwargs))


@register_model
def csba_squeeze_heads(pretrained: bool = False, **kwargs) -> CsbaSqueeze:
    """Hard decoupling: one 768 -> 1344 -> 1 head per class on the pooled features (7.54M at 6 classes)."""
    model_args = dict(head_type='heads')
    return _create_csba_squeeze('csba_squeeze_heads', pretrained, **dict(model_args, **kwargs))
