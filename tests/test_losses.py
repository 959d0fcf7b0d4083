"""Each loss against values computed by hand from its formula, on a few samples of two or three classes."""
import math

import pytest
import torch
import torch.nn.functional as F

from timm_csba.losses import FocalLoss, LDAMLoss, create_loss, create_loss_from_config

LOGITS = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
TARGET = torch.tensor([0, 1])
COUNTS = [3, 1]


def _nll(true_logit, other_logit):
    """-log softmax of the true class for two logits."""
    return math.log(1 + math.exp(other_logit - true_logit))


def test_weighted_cross_entropy_is_paper_eq_2_3():
    w = [4 / (2 * 3), 4 / (2 * 1)]  # N / (C * n_c)
    expected = (w[0] * _nll(2, 0) + w[1] * _nll(1, 0)) / (w[0] + w[1])
    assert create_loss('ce', COUNTS)(LOGITS, TARGET).item() == pytest.approx(expected, rel=1e-6)


def test_label_smoothing():
    eps = 0.1
    # smoothed target: (1 - eps) on the true class + eps / C on every class
    def sample(logits, t):
        log_p = [logits[k] - math.log(sum(math.exp(v) for v in logits)) for k in range(2)]
        return -((1 - eps) * log_p[t] + eps / 2 * sum(log_p))
    expected = (sample([2.0, 0.0], 0) + sample([0.0, 1.0], 1)) / 2
    loss = create_loss('ce', COUNTS, class_weights=None, label_smoothing=eps)
    assert loss(LOGITS, TARGET).item() == pytest.approx(expected, rel=1e-6)


def test_focal_loss_with_class_weights():
    w = torch.tensor([1.0, 3.0])
    p1, p2 = 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(-1))
    l1, l2 = (1 - p1) ** 2 * -math.log(p1), (1 - p2) ** 2 * -math.log(p2)
    assert FocalLoss(w, gamma=2)(LOGITS, TARGET).item() == pytest.approx((l1 + 3 * l2) / 4, rel=1e-6)
    # gamma = 0 is weighted cross-entropy
    ce = torch.nn.functional.cross_entropy(LOGITS, TARGET, weight=w)
    assert FocalLoss(w, gamma=0)(LOGITS, TARGET).item() == pytest.approx(ce.item(), rel=1e-6)


def test_logit_adjusted_loss_adds_log_prior():
    a0, a1 = math.log(0.75), math.log(0.25)
    expected = (_nll(2 + a0, 0 + a1) + _nll(1 + a1, 0 + a0)) / 2
    loss = create_loss('logit_adjusted', COUNTS, class_weights=None, la_tau=1.0)
    assert loss(LOGITS, TARGET).item() == pytest.approx(expected, rel=1e-6)


def test_logit_adjustment_removes_the_prior_the_sampler_draws():
    # square-root sampling draws the classes 3:1 as sqrt(3):1, balanced sampling as 1:1
    a0, a1 = math.log(3 ** 0.5 / (3 ** 0.5 + 1)), math.log(1 / (3 ** 0.5 + 1))
    expected = (_nll(2 + a0, 0 + a1) + _nll(1 + a1, 0 + a0)) / 2
    sqrt = create_loss('logit_adjusted', COUNTS, class_weights=None, sampler='sqrt')
    assert sqrt(LOGITS, TARGET).item() == pytest.approx(expected, rel=1e-6)
    balanced = create_loss('logit_adjusted', COUNTS, class_weights=None, sampler='balanced')
    assert balanced(LOGITS, TARGET).item() == pytest.approx(F.cross_entropy(LOGITS, TARGET).item(), rel=1e-6)
    from_args = create_loss_from_config({'loss': 'logit_adjusted', 'class_weights': 'none', 'sampler': 'sqrt'}, COUNTS)
    assert from_args(LOGITS, TARGET).item() == pytest.approx(expected, rel=1e-6)


def test_ldam_margins_and_deferred_reweighting():
    m = [0.5 * 3 ** -0.25, 0.5]  # proportional to n^-1/4, largest 0.5
    loss = LDAMLoss(COUNTS, max_margin=0.5, scale=1.0, drw_epoch=5)
    loss.set_epoch(1)
    expected = (_nll(2 - m[0], 0) + _nll(1 - m[1], 0)) / 2
    assert loss(LOGITS, TARGET).item() == pytest.approx(expected, rel=1e-6)
    loss.set_epoch(4)  # epochs completed: the fifth epoch is not re-weighted yet
    assert not loss.reweighted and loss(LOGITS, TARGET).item() == pytest.approx(expected, rel=1e-6)
    loss.set_epoch(5)
    assert loss.reweighted
    beta = 0.9999
    raw = [(1 - beta) / (1 - beta ** n) for n in COUNTS]
    w = [r * 2 / sum(raw) for r in raw]
    weighted = (w[0] * _nll(2 - m[0], 0) + w[1] * _nll(1 - m[1], 0)) / (w[0] + w[1])
    assert loss(LOGITS, TARGET).item() == pytest.approx(weighted, rel=1e-5)


def test_ldam_scales_raw_logits_by_one_unless_asked():
    """The default scale leaves the classifier's raw logits as they are; a run recorded under the old default 30
    keeps its scale, and with another loss that recorded 30 is no choice of the user's (resume, diagnose); a new
    run that asks for it with another loss is refused."""
    m = [0.5 * 3 ** -0.25, 0.5]
    plain = create_loss('ldam', COUNTS, class_weights=None)
    assert plain(LOGITS, TARGET).item() == pytest.approx((_nll(2 - m[0], 0) + _nll(1 - m[1], 0)) / 2, rel=1e-6)
    recorded = {'loss': 'ldam', 'class_weights': 'none', 'ldam_scale': 30.0}
    assert create_loss_from_config(recorded, COUNTS).scale == 30.0
    older_ce_run = {'loss': 'ce', 'class_weights': 'none', 'ldam_scale': 30.0, 'ldam_max_margin': 0.5}
    assert isinstance(create_loss_from_config(older_ce_run, COUNTS, recorded=True), torch.nn.CrossEntropyLoss)
    with pytest.raises(ValueError, match='the ce loss ignores ldam_scale'):
        create_loss_from_config(older_ce_run, COUNTS)  # --loss ce --ldam-scale 30 on a new run's command line
    with pytest.raises(ValueError, match='the ce loss ignores ldam_scale'):
        create_loss_from_config({**older_ce_run, 'ldam_scale': 10.0}, COUNTS, recorded=True)


def test_bad_loss_arguments():
    with pytest.raises(ValueError, match="Unknown loss 'dice'"):
        create_loss('dice', COUNTS)
    with pytest.raises(ValueError, match="Unknown sampler 'sqrt2'"):
        create_loss('logit_adjusted', COUNTS, sampler='sqrt2')
    with pytest.raises(ValueError, match=r'the focal loss ignores label_smoothing; drop --label-smoothing .*\(ce\)'):
        create_loss('focal', COUNTS, label_smoothing=0.1)
    # options that the chosen loss would ignore are errors, not silent no-ops
    with pytest.raises(ValueError, match='the ce loss ignores focal_gamma, drw_epoch; .* \\(focal, ldam\\)'):
        create_loss('ce', COUNTS, focal_gamma=1.0, drw_epoch=3)
    with pytest.raises(ValueError, match="ldam loss ignores class weights .* --class-weights none"):
        create_loss('ldam', COUNTS, class_weights='inverse')
    create_loss('focal', COUNTS, focal_gamma=1.0)  # where they apply, they are fine
    create_loss('ldam', COUNTS, class_weights=None, drw_epoch=3)


def test_loss_from_a_train_config():
    focal = create_loss_from_config({'loss': 'focal', 'class_weights': 'none', 'focal_gamma': 0.5,
                                     'drw_epoch': None}, COUNTS)
    assert isinstance(focal, FocalLoss) and focal.gamma == 0.5 and focal.weight is None
    default = create_loss_from_config({}, COUNTS)  # no run known: class-weighted cross-entropy
    torch.testing.assert_close(default.weight, torch.tensor([4 / 6, 2.0]))


def test_ordinal_loss_is_cross_entropy_against_soft_neighbouring_grades():
    # 3 grades 0, 1/2, 1 at scale 4: the target of grade 0 is softmax(-4 * [0, 1/4, 1]) = softmax([0, -1, -4])
    logits, target = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([0])
    soft = torch.tensor([0.0, -1.0, -4.0]).softmax(0)
    expected = -(soft * logits[0].log_softmax(0)).sum().item()
    loss = create_loss('ordinal', [10, 5, 1], class_weights=None, ordinal_scale=4.0)
    assert loss(logits, target).item() == pytest.approx(expected, rel=1e-6)
    # a large scale leaves no mass on the neighbours: plain cross-entropy
    sharp = create_loss('ordinal', [10, 5, 1], class_weights=None, ordinal_scale=1e4)
    assert sharp(logits, target).item() == pytest.approx(F.cross_entropy(logits, target).item(), rel=1e-6)
    # the grade in the middle is pulled both ways: its target is symmetric
    assert torch.allclose(loss.targets[1], loss.targets[1].flip(0))


def test_ordinal_loss_takes_mixup_soft_targets():
    """One-hot soft targets give the hard-target loss, class weights included; a 50/50 mix of two grades is the
    loss against the mean of their soft labels, weighted by the mean of their weights."""
    logits, target = torch.tensor([[1.0, 0.0, -1.0], [0.2, 0.3, 0.1]]), torch.tensor([0, 2])
    loss = create_loss('ordinal', [10, 5, 1], class_weights='inverse')
    one_hot = F.one_hot(target, 3).float()
    assert loss(logits, one_hot).item() == pytest.approx(loss(logits, target).item(), rel=1e-6)
    mixed = torch.tensor([[0.5, 0.0, 0.5]])
    soft = 0.5 * (loss.targets[0] + loss.targets[2])
    assert loss(logits[:1], mixed).item() == pytest.approx(-(soft * logits[0].log_softmax(0)).sum().item(), rel=1e-6)


def test_ldam_on_a_cosine_classifier_is_cao_et_als_formula():
    """With the model's normalised classifier emitting s * cos, the margins count in cosine units:
    CE(s * (cos - m)), exactly as published (s = 30)."""
    cosine = torch.tensor([[0.6, -0.2], [0.1, 0.3]])
    m = [0.5 * 3 ** -0.25, 0.5]
    loss = create_loss_from_config({'loss': 'ldam', 'class_weights': 'none', 'cosine_scale': 30.0}, COUNTS)
    expected = (_nll(30 * (0.6 - m[0]), 30 * -0.2) + _nll(30 * (0.3 - m[1]), 30 * 0.1)) / 2
    assert loss(30 * cosine, TARGET).item() == pytest.approx(expected, rel=1e-5)
