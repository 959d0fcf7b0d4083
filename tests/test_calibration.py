"""Logit offsets: fitted for macro-F1 on held-out logits, folded exactly into every classifier we ship."""
import numpy as np
import pytest
import timm
import torch

import timm_csba  # noqa: F401
from timm_csba.calibration import cross_fitted_predictions, fit_logit_offsets, fold_logit_offsets


@pytest.mark.parametrize('name', ['csba_squeeze', 'csba_squeeze_sum', 'csba_squeeze_shared', 'csba_squeeze_gradnorm',
                                  'csba_squeeze_heads', 'resnet18'])
def test_folded_offsets_shift_the_logits_exactly(name):
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=4, in_chans=1).eval()
    if getattr(model.get_classifier(), 'branch_weights', None) is not None:
        model.get_classifier().branch_weights.data = torch.tensor([0.3, -0.2, 0.5])  # unequal branch weights
    x = torch.randn(2, 1, 64, 64)
    offsets = [0.0, 0.7, -1.3, 2.1]
    with torch.no_grad():
        before = model(x)
        fold_logit_offsets(model, offsets)
        after = model(x)
    torch.testing.assert_close(after - before, torch.tensor([offsets] * 2), atol=1e-5, rtol=0)


def test_offsets_recover_a_minority_class_the_logits_rank_but_never_predict():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], [60, 20, 10])
    logits = np.eye(3)[labels] * 2 + rng.normal(0, 0.3, (90, 3))
    logits[:, 2] -= 2.5  # class 2's cells score 0.5 below the others: never predicted until shifted by ~0.5
    assert (logits.argmax(1) == 2).sum() == 0
    offsets = fit_logit_offsets(logits, labels)
    assert offsets[0] == 0 and offsets[2] >= 0.5
    assert ((logits + offsets).argmax(1) == labels).mean() > 0.95
    # nothing to correct: the offsets stay 0 (ties go to the offset nearest 0)
    clean = np.eye(3)[labels] * 2
    assert np.array_equal(fit_logit_offsets(clean, labels), np.zeros(3))


def test_cross_fitted_predictions_use_offsets_fitted_on_the_other_half():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], [40, 40])
    logits = np.eye(2)[labels] * 2 + rng.normal(0, 0.3, (80, 2))
    logits[:, 1] -= 2.5
    predictions = cross_fitted_predictions(logits, labels)
    assert predictions.shape == labels.shape and (predictions == labels).mean() > 0.95
    with pytest.raises(ValueError, match='4 offsets for 2 classes'):
        fold_logit_offsets(timm.create_model('resnet18', num_classes=2), [0, 0, 0, 0])
