"""Gradient-conflict diagnostics on constructed cases with known answers, invariances, and the CLI."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
import torch.nn as nn
import yaml

import timm_csba  # noqa: F401
from timm_csba.data import build_dataset, class_counts
from timm_csba.diagnose import main as diagnose_main
from timm_csba.diagnostics import (Diagnostics, LossGap, ParameterSetConflict, RunDiagnostics, analyze,
                                   conflict_matrices, conflict_summary, select_parameters, to_jsonable)
from timm_csba.hub import save_pretrained

ROOT = Path(__file__).resolve().parents[1]
ELPV_NAMES = ['functional', 'possibly_defective', 'likely_defective', 'defective']


class OneDirection(nn.Module):
    """logits = [w.x, 0, 0]: a class-0 sample pulls w along -x, a class-1 or class-2 sample along +x."""
    num_features = 2

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([0.3, -0.2]))

    def forward_features(self, x):
        return x

    def forward_head(self, x, pre_logits=False):
        if pre_logits:
            return x
        z = x @ self.w
        return torch.stack([z, torch.zeros_like(z), torch.zeros_like(z)], 1)


def _samples(labels, x=(1.0, 2.0)):
    return [{'pixel_values': torch.tensor(x), 'label': torch.tensor(c)} for c in labels]


def test_opposite_and_identical_class_gradients():
    labels = [0, 0, 1, 1, 2, 2]
    out = analyze(OneDirection(), _samples(labels), labels, ['a', 'b', 'c'], params='all', batch_size=2)
    cos = out.parameter_sets['all'].cosine
    torch.testing.assert_close(cos, torch.tensor([[1., -1, -1], [-1, 1, 1], [-1, 1, 1]], dtype=torch.float64))
    torch.testing.assert_close(cos, cos.T)


def test_magnitude_measure_sees_a_scaled_loss_and_cosine_does_not():
    labels = [0, 1, 1, 2, 2]
    plain = analyze(OneDirection(), _samples(labels), labels, ['a', 'b', 'c'], params='all')
    scaled = analyze(OneDirection(), _samples(labels), labels, ['a', 'b', 'c'], params='all',
                     criterion=nn.CrossEntropyLoss(weight=torch.tensor([1.0, 10.0, 1.0])))
    p, s = plain.parameter_sets['all'], scaled.parameter_sets['all']
    torch.testing.assert_close(p.cosine, s.cosine)
    assert p.magnitude[1, 2] == pytest.approx(1.0)
    assert s.magnitude[1, 2] == pytest.approx(2 * 10 / (1 + 100))
    assert s.projection[1, 2] == pytest.approx(10.0) and s.projection[2, 1] == pytest.approx(0.1)
    assert s.grad_norms[1] == pytest.approx(10 * p.grad_norms[1].item())


def test_absent_class_is_a_nan_row_not_zero():
    labels = [0, 0, 1, 1]
    out = analyze(OneDirection(), _samples(labels), labels, ['a', 'b', 'c'], params='all')
    cos = out.parameter_sets['all'].cosine
    assert out.absent_classes == ['c'] and out.samples_per_class == [2, 2, 0]
    assert torch.isnan(cos[2]).all() and torch.isnan(cos[:, 2]).all()
    assert to_jsonable(cos)[2] == [None, None, None]
    assert out.parameter_sets['all'].summary['cosine'].mean_off_diagonal == pytest.approx(-1.0)


def test_summary_averages_the_most_negative_majority_minority_pairs():
    matrix = torch.tensor([[1.0, -0.5, -0.2], [-0.5, 1.0, 0.3], [-0.2, 0.3, 1.0]])
    summary = conflict_summary(matrix, counts=[100, 10, 5], k=1)
    # median count 10: classes 0 and 1 are the majority, class 2 the minority; (0, 1) is not a mixed pair
    assert summary.most_negative_pairs == [{'majority': 0, 'minority': 2, 'value': pytest.approx(-0.2)}]
    assert summary.mean_most_negative_pairs == pytest.approx(-0.2)
    assert summary.mean_off_diagonal == pytest.approx((-0.5 - 0.2 + 0.3) * 2 / 6)


def _random_split(n=24, classes=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    xs, ys = torch.randn(n, 1, size, size, generator=g), [i % classes for i in range(n)]
    return [{'pixel_values': xs[i], 'label': torch.tensor(ys[i])} for i in range(n)], ys


def test_batch_size_does_not_change_the_matrices():
    torch.manual_seed(0)
    model = timm.create_model('csba_squeeze', num_classes=4, in_chans=1)
    data, labels = _random_split()
    one = analyze(model, data, labels, ELPV_NAMES, batch_size=1)
    many = analyze(model, data, labels, ELPV_NAMES, batch_size=64)
    for key in ('cosine', 'magnitude', 'projection', 'grad_norms'):
        torch.testing.assert_close(getattr(one.parameter_sets['backbone'], key), getattr(many.parameter_sets['backbone'], key),
                                   rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(one.class_mean_angles_deg, many.class_mean_angles_deg, rtol=1e-4, atol=1e-3)


def test_baseline_branches_share_gradient_uniformly_at_init():
    torch.manual_seed(0)
    model = timm.create_model('csba_squeeze_sum', num_classes=4, in_chans=1)
    data, labels = _random_split()
    shares = analyze(model, data, labels, ELPV_NAMES).branches.grad_shares
    torch.testing.assert_close(shares, torch.full((3, 4), 1 / 3, dtype=torch.float64))


def test_csba_attention_overlap_and_layerwise_sets():
    torch.manual_seed(0)
    model = timm.create_model('csba_squeeze', num_classes=4, in_chans=1)
    data, labels = _random_split()
    out = analyze(model, data, labels, ELPV_NAMES, params='layerwise')
    assert list(out.parameter_sets) == ['stem', 'stages.0', 'stages.1', 'stages.2', 'stages.3', 'head']
    jaccard = out.attention.jaccard
    assert jaccard.shape == (4, 3, 3) and torch.allclose(torch.diagonal(jaccard, dim1=1, dim2=2), torch.ones(4, 3))
    assert (jaccard[:, 0, 1] < 1).all()  # independently initialised gates pick different channels
    assert out.class_mean_angles_deg.shape == (4, 4)


def test_regex_matching_nothing_is_a_clear_error():
    model = timm.create_model('csba_squeeze', num_classes=4)
    with pytest.raises(ValueError, match="--params 'nope' matches no parameter"):
        select_parameters(model, 'nope')
    assert select_parameters(model, r'^stem\.')[r'^stem\.'] == ['stem.conv.weight', 'stem.bn.weight', 'stem.bn.bias']


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = timm.create_model('csba_squeeze', num_classes=4, in_chans=1)
    folder = tmp_path_factory.mktemp('model') / 'best'
    save_pretrained(model, folder, ELPV_NAMES, dict(input_size=(1, 32, 32), mean=(0.597,), std=(0.161,)))
    return folder


def test_cli_one_process_equals_two(model_dir, tmp_path):
    common = ['-m', 'timm_csba.diagnose', '--model-dir', str(model_dir), '--split', 'validation',
              '--num-workers', '0', '--batch-size', '16']
    single = subprocess.run([sys.executable, *common, '--out', str(tmp_path / 'one')], capture_output=True,
                            text=True, cwd=ROOT)
    assert single.returncode == 0, single.stderr[-2000:]
    env = dict(os.environ, ACCELERATE_USE_CPU='true')
    double = subprocess.run([sys.executable, '-m', 'accelerate.commands.launch', '--multi_gpu', '--num_processes', '2',
                             '--num_machines', '1', '--mixed_precision', 'no', '--dynamo_backend', 'no', *common,
                             '--out', str(tmp_path / 'two')], capture_output=True, text=True, cwd=ROOT, env=env)
    assert double.returncode == 0, double.stderr[-2000:]
    one, two = (json.loads((tmp_path / d / 'diagnostics.json').read_text()) for d in ('one', 'two'))
    assert one['samples_per_class'] == two['samples_per_class'] == [151, 30, 11, 72]
    for key in ('cosine', 'magnitude', 'grad_norms'):
        torch.testing.assert_close(torch.tensor(one['parameter_sets']['backbone'][key]),
                                   torch.tensor(two['parameter_sets']['backbone'][key]), rtol=1e-5, atol=1e-6)
    assert {'gcm_cosine_backbone.png', 'gcm_magnitude_backbone.png', 'class_mean_angles.png'} <= \
        {p.name for p in (tmp_path / 'one').iterdir()}
    assert one['checkpoint_sha256'] and one['architecture'] == 'csba_squeeze' and one['split'] == 'validation'


def test_cli_bad_inputs(model_dir, tmp_path):
    with pytest.raises(SystemExit, match='is not a timm/Hub model folder'):
        diagnose_main(['--model-dir', str(tmp_path), '--out', str(tmp_path / 'o')])
    with pytest.raises(SystemExit, match="the model has 4 classes but the dataset has 2"):
        diagnose_main(['--model-dir', str(model_dir), '--dataset-options', '{labels: binary}', '--out', str(tmp_path)])
    with pytest.raises(SystemExit, match="--params 'zzz' matches no parameter"):
        diagnose_main(['--model-dir', str(model_dir), '--params', 'zzz', '--split', 'validation',
                       '--max-batches', '1', '--num-workers', '0', '--out', str(tmp_path / 'o')])


def test_conflict_matrices_of_orthogonal_gradients():
    grads = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    mats = conflict_matrices(grads)
    assert mats['cosine'][0, 1] == 0 and mats['magnitude'][0, 1] == 0
    torch.testing.assert_close(mats['norms'], torch.tensor([1.0, 2.0], dtype=torch.float64))


def test_any_timm_model_works_without_branch_analysis():
    torch.manual_seed(0)
    model = timm.create_model('resnet18', num_classes=4, in_chans=1)
    data, labels = _random_split()
    out = analyze(model, data, labels, ELPV_NAMES, params='layerwise')
    assert out.branches is None and out.attention is None
    assert {'conv1', 'layer1', 'layer4', 'fc'} <= set(out.parameter_sets)
    backbone = analyze(model, data, labels, ELPV_NAMES).parameter_sets['backbone']
    assert backbone.num_params == sum(p.numel() for n, p in model.named_parameters() if not n.startswith('fc.'))
    assert torch.allclose(torch.diagonal(backbone.cosine), torch.ones(4, dtype=torch.float64))


def test_cli_rebuilds_the_runs_own_split(model_dir, tmp_path):
    """A run trained with non-default split fractions is diagnosed on its own split, read from RUN/args.yaml."""
    run = tmp_path / 'run'
    shutil.copytree(model_dir, run / 'best')
    (run / 'args.yaml').write_text(yaml.safe_dump({'dataset': 'elpv', 'split_seed': 3, 'val_fraction': 0.05,
                                                   'test_fraction': 0.2, 'loss': 'ce', 'class_weights': 'none'}))
    diagnose_main(['--model-dir', str(run / 'best'), '--split', 'validation', '--num-workers', '0',
                   '--batch-size', '16', '--out', str(tmp_path / 'o')])
    report = json.loads((tmp_path / 'o' / 'diagnostics.json').read_text())
    expected = list(class_counts(build_dataset('elpv', seed=3, val_fraction=0.05)['validation']).values())
    assert report['samples_per_class'] == expected != [151, 30, 11, 72]  # the default split's


def test_cli_undecodable_image_in_a_worker_is_one_line(tmp_path):
    from PIL import Image
    for name in ('a', 'b'):
        for i in range(6):
            path = tmp_path / 'cells' / name / f'{i}.png'
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new('L', (16, 16), 40 * i).save(path)
    victim = tmp_path / 'cells' / 'a' / '0.png'
    victim.write_bytes(victim.read_bytes()[:40])
    folder = save_pretrained(timm.create_model('csba_squeeze', num_classes=2, in_chans=1), tmp_path / 'best',
                             ['a', 'b'], dict(input_size=(1, 16, 16), mean=(0.5,), std=(0.5,)))
    with pytest.raises(SystemExit) as exit_info:
        diagnose_main(['--model-dir', str(folder), '--dataset', 'imagefolder', '--data-dir', str(tmp_path / 'cells'),
                       '--val-fraction', '0.2', '--test-fraction', '0.2', '--num-workers', '1', '--out',
                       str(tmp_path / 'o')])
    message = str(exit_info.value)
    assert 'Cannot decode image' in message and 'Remove or replace' in message and '\n' not in message


def test_run_diagnostics_read_back_from_a_staged_diagnostics_json_unchanged():
    """The typed result reads the diagnostics.json files already published and writes them back key for key."""
    path = ROOT / 'hub' / 'csba_squeeze.elpv' / 'diagnostics' / 'diagnostics.json'
    if not path.exists():
        pytest.skip('no staged diagnostics')
    data = json.loads(path.read_text())
    run = RunDiagnostics.from_json(data)
    assert isinstance(run.diagnostics.parameter_sets['backbone'].cosine, torch.Tensor)
    assert run.losses.train_loss == data['losses']['train_loss'] and run.compare_dir == data['compare']['model_dir']
    def present(sections):  # files written before the typed result left out the sections now written as null
        return {key: value for key, value in sections.items() if value is not None}
    assert present(run.to_json()) == present(data)


def test_conflict_vs_f1_and_loss_gaps_by_hand():
    cosine = torch.tensor([[1.0, -0.2, 0.4], [-0.2, 1.0, 0.0], [0.4, 0.0, 1.0]], dtype=torch.float64)
    stats = ParameterSetConflict.of(torch.eye(3, dtype=torch.float64), torch.tensor([5.0, 3.0, 1.0]), k=1)
    stats.cosine = cosine
    assert stats.row_mean_cosine() == pytest.approx([0.1, -0.1, 0.2])
    diag = Diagnostics(class_names=['a', 'b', 'c'], samples_per_class=[5, 3, 1], absent_classes=[],
                       parameter_sets={'backbone': stats}, class_mean_angles_deg=torch.zeros(3, 3))
    corr = diag.conflict_vs_f1([0.5, 0.1, 0.9])['backbone']  # ranks of conflict 2,1,3 and of F1 2,1,3
    assert corr.rho == pytest.approx(1.0) and corr.n == 3 and corr.test_f1 == [0.5, 0.1, 0.9]

    history = [{'epoch': 1, 'train_loss': 1.2, 'val_loss': 1.0}, {'epoch': 2, 'train_loss': 0.9, 'val_loss': 1.1}]
    model, baseline = LossGap.at_epoch(history, 2), LossGap.at_epoch(history, 1)
    assert model.generalization_gap == pytest.approx(0.2)
    assert RunDiagnostics.optimization_gain(baseline, model) == pytest.approx(0.3)
    assert RunDiagnostics.optimization_gain(None, model) is None


def test_cli_on_a_finished_run_adds_what_the_run_knows(smoke_run):
    """conftest's shared run, diagnosed with --compare init: F1 correlation, loss gap, the initialisation's matrices."""
    report = RunDiagnostics.from_json(json.loads((smoke_run / 'diagnostics' / 'diagnostics.json').read_text()))
    test = json.loads((smoke_run / 'test_metrics.json').read_text())
    history = [json.loads(line) for line in (smoke_run / 'metrics.jsonl').read_text().splitlines()]
    assert report.losses == LossGap.at_epoch(history, test['best_epoch'])
    f1 = report.conflict_vs_f1['backbone']
    assert f1.test_f1 == [test['per_class'][n]['f1'] for n in report.diagnostics.class_names]
    assert f1.row_mean_cosine == pytest.approx(report.diagnostics.parameter_sets['backbone'].row_mean_cosine(), nan_ok=True)
    assert report.compare_dir == 'init' and report.compare.parameter_sets['backbone'].cosine.shape == (4, 4)
    assert report.params == 'backbone layerwise'  # two choices, one gradient pass
    assert list(report.diagnostics.parameter_sets) == ['backbone', 'stem', 'stages.0', 'stages.1', 'stages.2',
                                                       'stages.3', 'head']
    assert report.optimization_improvement is None  # only between two runs
