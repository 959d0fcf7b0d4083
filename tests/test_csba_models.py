"""Behaviour of the csba_* family beyond timm's generic contract: the paper's sizes and maths, the variants'
defining properties, pretrained loading and the errors users see."""
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import timm_csba  # noqa: F401
from timm_csba.models.csba_squeeze import BranchClassifier, ClassSpecificHeads

HUB = Path(__file__).resolve().parents[1] / 'hub'

ARCHS = ['csba_squeeze', 'csba_squeeze_sum', 'csba_squeeze_shared', 'csba_squeeze_gradnorm', 'csba_squeeze_heads']
SMALL = 64  # px: enough for every stride, fast on CPU


def _create(name, **kwargs):
    torch.manual_seed(0)
    return timm.create_model(name, **kwargs)


def _num_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('name, exact, paper', [
    ('csba_squeeze_sum', 1_346_002, 1.35e6),
    ('csba_squeeze', 1_788_370, 1.79e6),
    ('csba_squeeze_heads', 7_541_446, 7.50e6),
    ('csba_squeeze_gradnorm', 1_346_005, 1.37e6),
    ('csba_squeeze_shared', 1_493_458, None),
])
def test_param_counts_match_paper_table_2(name, exact, paper):
    count = _num_params(timm.create_model(name, num_classes=6, in_chans=3))
    assert count == exact
    if paper is not None:
        assert abs(count - paper) / paper <= 0.03


def test_csba_overhead_is_three_bias_free_se_gates():
    base = _num_params(timm.create_model('csba_squeeze_sum', num_classes=6))
    csba = _num_params(timm.create_model('csba_squeeze', num_classes=6))
    shared = _num_params(timm.create_model('csba_squeeze_shared', num_classes=6))
    assert csba - base == 3 * 2 * 768 * 96
    assert shared - base == 2 * 768 * 96


@pytest.mark.parametrize('name', ARCHS)
@pytest.mark.parametrize('in_chans', [1, 3])
def test_shapes_for_every_variant(name, in_chans):
    model = _create(name, num_classes=5, in_chans=in_chans).eval()
    x = torch.randn(2, in_chans, SMALL, SMALL)
    features = model.forward_features(x)
    assert features.shape == (2, 768, 4, 4)
    assert model.forward_head(features, pre_logits=True).shape == (2, 768)
    assert model(x).shape == (2, 5)


@pytest.mark.parametrize('name', ARCHS)
def test_every_parameter_gets_a_gradient(name):
    model = _create(name, num_classes=4).train()
    F.cross_entropy(model(torch.randn(4, 3, SMALL, SMALL)), torch.tensor([0, 1, 2, 3])).backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not silent, f'parameters with no gradient: {silent}'


def test_csba_gives_each_branch_its_own_gate():
    head = _create('csba_squeeze', num_classes=4).get_classifier()
    gates = [branch.attn for branch in head.branches]
    assert len({id(g) for g in gates}) == 3
    assert not torch.equal(gates[0].fc1.weight, gates[1].fc1.weight)
    assert all(g.fc1.bias is None and g.fc2.bias is None for g in gates)
    assert all(g.fc1.out_channels == 96 for g in gates)


def test_shared_variant_uses_one_gate_for_all_branches():
    head = _create('csba_squeeze_shared', num_classes=4).get_classifier()
    assert head.attn.fc1.out_channels == 96
    assert all(isinstance(branch.attn, torch.nn.Identity) for branch in head.branches)


@pytest.mark.parametrize('name', ['csba_squeeze', 'csba_squeeze_sum', 'csba_squeeze_shared'])
def test_pooled_head_equals_the_papers_map_level_head_at_eval(name):
    """Paper Eq. 29/38: logits = GAP(sum_b conv_b(F * a_b)), branches applied to the full map."""
    model = _create(name, num_classes=6).eval()
    x = torch.randn(2, 3, 96, 96)
    features = model.forward_features(x)
    head = model.get_classifier()
    gate_of = {
        'csba_squeeze': lambda b: head.branches[b].attn,
        'csba_squeeze_shared': lambda b: head.attn,
        'csba_squeeze_sum': lambda b: torch.nn.Identity(),
    }[name]
    paper = sum(head.branches[b].fc(gate_of(b)(features)) for b in range(3)).mean((2, 3))
    torch.testing.assert_close(model.forward_head(features), paper, rtol=1e-5, atol=1e-5)


def test_gradnorm_branch_weights_start_equal_and_learn():
    model = _create('csba_squeeze_gradnorm', num_classes=4)
    head = model.get_classifier()
    torch.testing.assert_close(head.branch_weights.softmax(0), torch.full((3,), 1 / 3))
    model.eval()
    x = torch.randn(2, 3, SMALL, SMALL)
    features = model.forward_features(x)
    pooled = features.mean((2, 3), keepdim=True)
    expected = sum(branch.fc(pooled) for branch in head.branches).flatten(1) / 3
    torch.testing.assert_close(model.forward_head(features), expected, rtol=1e-5, atol=1e-5)
    model.train()
    F.cross_entropy(model(x), torch.tensor([0, 1])).backward()
    assert head.branch_weights.grad.abs().sum() > 0


def test_class_specific_heads_are_hard_decoupled():
    """The logit of class c back-propagates into head c only."""
    model = _create('csba_squeeze_heads', num_classes=4, drop_rate=0.).eval()
    heads = model.get_classifier()
    assert isinstance(heads, ClassSpecificHeads)
    model(torch.randn(2, 3, SMALL, SMALL))[:, 2].sum().backward()
    hidden_grad = heads.hidden.weight.grad.flatten(1).abs().sum(1).view(4, heads.hidden_chs).sum(1)
    out_grad = heads.fc.weight.grad.flatten(1).abs().sum(1)
    assert hidden_grad[2] > 0 and out_grad[2] > 0
    assert hidden_grad[[0, 1, 3]].sum() == 0 and out_grad[[0, 1, 3]].sum() == 0


@pytest.mark.parametrize('name', ARCHS)
def test_reset_classifier_then_forward(name):
    model = _create(name, num_classes=4).eval()
    x = torch.randn(2, 3, SMALL, SMALL)
    model.reset_classifier(7)
    assert model(x).shape == (2, 7) and model.num_classes == 7
    model.reset_classifier(0)
    assert model(x).shape == (2, 768)
    model.reset_classifier(3)
    assert model(x).shape == (2, 3)
    model.reset_classifier(0, '')
    assert model(x).shape == (2, 768, 4, 4)


def test_reset_classifier_keeps_the_csba_gates():
    model = _create('csba_squeeze', num_classes=4)
    gate = model.get_classifier().branches[1].attn.fc1.weight.clone()
    model.reset_classifier(9)
    head = model.get_classifier()
    assert isinstance(head, BranchClassifier) and head.branches[1].fc.out_channels == 9
    torch.testing.assert_close(head.branches[1].attn.fc1.weight, gate, rtol=0, atol=0)


@pytest.mark.parametrize('name', ARCHS)
def test_channels_last_and_autocast(name):
    model = _create(name, num_classes=4).eval()
    x = torch.randn(2, 3, SMALL, SMALL)
    expected = model(x)
    model_cl = model.to(memory_format=torch.channels_last)
    torch.testing.assert_close(model_cl(x.contiguous(memory_format=torch.channels_last)), expected,
                               rtol=1e-4, atol=1e-4)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(x)
    assert out.dtype == torch.bfloat16
    assert torch.isfinite(out).all()


def test_grad_checkpointing_gives_the_same_gradients():
    x = torch.randn(2, 3, SMALL, SMALL)
    grads = []
    for checkpointing in (False, True):
        model = _create('csba_squeeze', num_classes=4, drop_rate=0.).train()
        model.set_grad_checkpointing(checkpointing)
        model(x).square().sum().backward()
        grads.append(model.stem.conv.weight.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_features_only_for_grayscale_cells():
    model = _create('csba_squeeze', features_only=True, in_chans=1)
    features = model(torch.randn(1, 1, 300, 300))
    assert [f.shape[1] for f in features] == [64, 192, 384, 576, 768]
    assert [f.shape[-1] for f in features] == [150, 75, 37, 18, 18]
    assert model.feature_info.reduction() == [2, 4, 8, 16, 16]


def test_every_architecture_has_published_weights_and_a_tag_without_says_so():
    # timm's idiom: only a cfg with a weights location (hf_hub_id) is a pretrained tag; each one is staged in hub/
    tags = timm.list_models('csba_*', pretrained=True, include_tags=True)
    assert sorted(tags) == sorted(f'{a}.elpv' for a in ARCHS) == sorted(p.name for p in HUB.iterdir() if p.is_dir())
    assert all(timm.models.get_pretrained_cfg(t).hf_hub_id == f'timm-csba/{t}' for t in tags)
    with pytest.raises(RuntimeError, match='No pretrained weights exist for csba_squeeze_heads'):
        timm.create_model('csba_squeeze_heads', pretrained=True, pretrained_cfg_overlay=dict(hf_hub_id=None))


def test_pretrained_from_a_local_safetensors_file(tmp_path):
    source = _create('csba_squeeze', num_classes=4).eval()
    path = tmp_path / 'model.safetensors'
    save_file(source.state_dict(), str(path))
    overlay = dict(file=str(path))

    loaded = timm.create_model('csba_squeeze', pretrained=True, pretrained_cfg_overlay=overlay).eval()
    x = torch.randn(2, 3, SMALL, SMALL)
    torch.testing.assert_close(loaded(x), source(x), rtol=0, atol=0)

    # fine-tuning to another class count: timm drops the cfg's classifier layers, the rest (gates too) loads
    finetune = timm.create_model('csba_squeeze', pretrained=True, pretrained_cfg_overlay=overlay, num_classes=2)
    torch.testing.assert_close(finetune.stem.conv.weight, source.stem.conv.weight, rtol=0, atol=0)
    torch.testing.assert_close(finetune.get_classifier().branches[0].attn.fc1.weight,
                               source.get_classifier().branches[0].attn.fc1.weight, rtol=0, atol=0)
    assert finetune(x).shape == (2, 2)

    # grayscale: timm folds the 3-channel first conv into one channel
    gray = timm.create_model('csba_squeeze', pretrained=True, pretrained_cfg_overlay=overlay, in_chans=1).eval()
    torch.testing.assert_close(gray.stem.conv.weight, source.stem.conv.weight.sum(1, keepdim=True))


def test_bad_arguments_get_one_clear_error():
    with pytest.raises(ValueError, match='Unknown head_type .*csba, sum, shared, gradnorm, heads'):
        timm.create_model('csba_squeeze', head_type='attention')
    with pytest.raises(ValueError, match='num_classes must be >= 1'):
        timm.create_model('csba_squeeze', num_classes=-1)
    with pytest.raises(TypeError, match='not_an_arg'):
        timm.create_model('csba_squeeze', not_an_arg=1)
    model = _create('csba_squeeze', num_classes=4)
    with pytest.raises(ValueError, match='num_classes must be >= 1'):
        model.reset_classifier(-2)


def test_rgb_input_into_grayscale_model_names_the_fix():
    model = _create('csba_squeeze', num_classes=4, in_chans=1).eval()
    with pytest.raises(ValueError, match=r'3 channels .*in_chans=1.*Grayscale'):
        model(torch.randn(1, 3, SMALL, SMALL))
    with pytest.raises(ValueError, match=r'3 channels .*in_chans=1'):
        model.forward_intermediates(torch.randn(1, 3, SMALL, SMALL))


def test_cli_lists_every_model_with_params_and_gmacs():
    out = subprocess.run([sys.executable, '-m', 'timm_csba', '--img-size', '64'],
                         capture_output=True, text=True, check=True).stdout
    for name in ARCHS:
        assert name in out
    assert '1,788,370' in out and '7,541,446' in out
