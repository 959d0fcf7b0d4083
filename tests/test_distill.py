"""Distillation: the teacher file of `python -m timm_csba.distill` and train.py --distill learning from it."""
import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import save_file

from timm_csba.calibration import fold_logit_offsets
from timm_csba.data import build_run_dataset
from timm_csba.distill import main as distill_main
from timm_csba.distillation import DistillError, distill_targets, load_teacher
from timm_csba.evaluation import split_probabilities
from timm_csba.metrics import load_predictions
from timm_csba.inference import load_model

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / 'configs' / 'smoke.yaml')


def _train_split(run: Path):
    """The train split of a train.py run, rebuilt from its args.yaml (as hub export rebuilds a run's test split)."""
    args = argparse.Namespace(**yaml.safe_load((run / 'args.yaml').read_text()))
    return build_run_dataset(args, splits=('train',))[0]['train']


def _with_folded_offsets(run_best: Path, to: Path, offsets) -> Path:
    """A copy of a best/ folder whose weights carry `offsets` as train.py --logit-offsets fit leaves them."""
    shutil.copytree(run_best, to)
    model = load_model(str(run_best))
    fold_logit_offsets(model, offsets)
    save_file(model.state_dict(), str(to / 'model.safetensors'))
    config = json.loads((to / 'config.json').read_text())
    config['logit_offsets'] = list(offsets)
    (to / 'config.json').write_text(json.dumps(config))
    return to


def test_teacher_file_is_the_mean_of_its_models_without_their_offsets(smoke_run, tmp_path, capsys):
    """Two teachers, one of them carrying validation-fitted logit offsets: the file holds the plain models' mean
    probabilities on the run's train split (--limit-train included), with its labels in order."""
    shifted = _with_folded_offsets(smoke_run / 'best', tmp_path / 'shifted', [2.0, -1.0, 0.5, 0.0])
    out = tmp_path / 'teacher.npz'
    distill_main([str(smoke_run / 'best'), f'local-dir:{shifted}', '--limit-train', '64', '--out', str(out)])
    assert 'wrote' in capsys.readouterr().out and not list(tmp_path.glob('.teacher*'))

    split = _train_split(smoke_run)
    labels, probabilities = split_probabilities(load_model(str(smoke_run / 'best')), split)
    teacher = load_teacher(str(out), split['label'], 4)
    assert teacher.shape == (64, 4) and torch.allclose(teacher, probabilities, atol=1e-5)
    with np.load(out, allow_pickle=False) as f:
        assert f['labels'].tolist() == labels.tolist() == split['label']
    # the offsets are real: without taking them out, the shifted teacher would differ
    shifted_model = load_model(str(shifted))
    assert not torch.allclose(split_probabilities(shifted_model, split)[1], probabilities, atol=1e-3)


def test_teacher_file_of_another_split_or_not_a_teacher_file_is_refused(tmp_path):
    labels = [0, 1, 2, 3]
    bad = tmp_path / 'bad.npz'
    bad.write_bytes(b'not an npz')
    with pytest.raises(DistillError, match='not a teacher file of python -m timm_csba.distill'):
        load_teacher(str(bad), labels, 4)
    other = tmp_path / 'other.npz'
    np.savez(other, probabilities=np.full((4, 4), 0.25, np.float32), labels=np.array([0, 1, 3, 2]))
    with pytest.raises(DistillError, match='of another train split'):
        load_teacher(str(other), labels, 4)


def test_distill_targets_mix_label_and_teacher():
    teacher = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]])
    targets = distill_targets(torch.tensor([3, 0]), teacher, 0.5)
    assert torch.allclose(targets, torch.tensor([[0.05, 0.1, 0.15, 0.7], [0.625, 0.125, 0.125, 0.125]]))
    assert torch.equal(distill_targets(torch.tensor([3, 0]), teacher, 0.0), torch.eye(4)[[3, 0]])


def test_train_learns_what_the_teacher_says_at_weight_one(smoke_run, tmp_path):
    """A teacher that calls every train cell 'likely_defective', a grade the smoke run's labels rarely have: at
    --distill-weight 1 the labels count for nothing, so the trained model calls every test cell that."""
    labels = _train_split(smoke_run)['label']  # the smoke preset's train split, which this run trains on
    teacher = tmp_path / 'teacher.npz'
    np.savez(teacher, probabilities=np.eye(4, dtype=np.float32)[[2] * len(labels)], labels=np.array(labels))
    run = tmp_path / 'run'
    result = subprocess.run([sys.executable, 'train.py', '--config', SMOKE, '--output-dir', str(run), '--distill',
                             str(teacher), '--distill-weight', '1'], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert yaml.safe_load((run / 'args.yaml').read_text())['distill'] == str(teacher)
    _, predictions = load_predictions(run / 'test_predictions.csv')
    assert set(np.asarray(predictions).tolist()) == {2}


def test_unknown_teacher_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match="error: unknown model 'csba_sqeeze'; did you mean csba_squeeze"):
        distill_main(['csba_sqeeze', '--out', str(tmp_path / 't.npz')])
    assert not (tmp_path / 't.npz').exists()
