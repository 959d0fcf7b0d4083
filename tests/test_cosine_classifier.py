"""The normalised (cosine) classifier of LDAM-DRW as published: logits s * cos for any timm model's linear
classifier and for the csba heads (the branches' mean cosine), the checkpoint keys unchanged, the exact class maps
kept, and a model saved with it loaded back with it."""
import pytest
import timm
import torch
import torch.nn.functional as F

import timm_csba  # noqa: F401
from timm_csba.cam import branch_class_maps
from timm_csba.hub import save_pretrained
from timm_csba.inference import load_model
from timm_csba.models import CosineConv2d, CosineLinear, use_cosine_classifier

DATA_CONFIG = dict(input_size=(1, 32, 32), mean=(0.5,), std=(0.25,), interpolation='bilinear', crop_pct=1.0)


@pytest.mark.parametrize('name, branches', [('csba_squeeze_sum', 3), ('csba_squeeze', 3), ('csba_squeeze_shared', 3),
                                            ('csba_squeeze_gradnorm', 3)])
def test_csba_heads_average_their_branch_cosines_times_s(name, branches):
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=5, in_chans=1, cosine_scale=30).eval()
    plain = timm.create_model(name, num_classes=5, in_chans=1).eval()
    assert list(model.state_dict()) == list(plain.state_dict())  # a checkpoint keeps its keys
    x = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        logits = model(x)
        pooled = model.head.global_pool(model.forward_features(x)).flatten(1)
        classifier = model.head.fc
        shared = classifier.attn(pooled[..., None, None]).flatten(1) if classifier.attn is not None else pooled
        cosines = []
        for branch in classifier.branches:
            seen = branch.attn(shared[..., None, None]).flatten(1)
            cosines.append(F.normalize(seen, dim=1) @ F.normalize(branch.fc.weight.flatten(1), dim=1).T)
        weights = (classifier.branch_weights.softmax(0) if classifier.branch_weights is not None
                   else torch.full((branches,), 1 / branches))
        expected = 30 * sum(w * c for w, c in zip(weights, cosines))
        torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)
        assert logits.abs().max() <= 30
        exact, maps = branch_class_maps(model, x)
        torch.testing.assert_close(maps.mean((2, 3)), logits, atol=1e-4, rtol=1e-4)  # the exact CAM holds
    assert all(not branch.fc.bias.requires_grad and branch.fc.bias.abs().max() == 0 for branch in classifier.branches)
    model.reset_classifier(3)
    assert all(isinstance(branch.fc, CosineConv2d) for branch in model.head.fc.branches)


def test_any_timm_linear_classifier_and_one_line_for_the_per_class_heads():
    model = timm.create_model('resnet18', num_classes=4).eval()
    use_cosine_classifier(model, 16)
    assert isinstance(model.fc, CosineLinear)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = 16 * F.normalize(model.forward_head(model.forward_features(x), pre_logits=True), dim=1) @ \
            F.normalize(model.fc.weight, dim=1).T
        torch.testing.assert_close(model(x), expected)
    with pytest.raises(ValueError, match='no cosine classifier for CsbaSqueeze: its classifier is a '
                                         'ClassSpecificHeads'):
        timm.create_model('csba_squeeze_heads', num_classes=4, cosine_scale=30)
    with pytest.raises(ValueError, match='scale must be positive'):
        use_cosine_classifier(model, 0)


@pytest.mark.parametrize('name', ['csba_squeeze_sum', 'resnet18'])
def test_a_model_saved_with_it_loads_back_with_it(name, tmp_path):
    """csba_* rebuild it from config.json's model_args; any other timm model from its recorded cosine_scale."""
    torch.manual_seed(0)
    csba = name.startswith('csba_')
    model = timm.create_model(name, num_classes=4, in_chans=1, **({'cosine_scale': 30.0} if csba else {})).eval()
    if not csba:
        use_cosine_classifier(model, 30.0)
    with torch.no_grad():
        model.get_classifier().branches[0].fc.bias.add_(0.5) if csba else model.fc.bias.add_(0.5)  # folded offsets
    folder = save_pretrained(model, tmp_path / name, ['a', 'b', 'c', 'd'], DATA_CONFIG,
                             extra_config=None if csba else {'cosine_scale': 30.0})
    loaded = load_model(str(folder))
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
