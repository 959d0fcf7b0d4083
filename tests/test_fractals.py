"""Formula-driven fractals: deterministic, one distinct shape per category, a dataset train.py reads like any other,
and a backbone pretrained on them that fine-tunes with a new classifier."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from timm_csba.data import DatasetError, build_dataset
from timm_csba.data.fractals import (MIN_SIZE, _density, category_system, fractal_image, fractal_images,
                                     instance_system, sample_system)

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / 'configs' / 'smoke.yaml')


def test_every_sampled_map_contracts_and_the_weighted_singular_values_sum_to_alpha():
    rng = np.random.default_rng(0)
    for _ in range(200):
        system = sample_system(rng)
        singular = np.linalg.svd(system[:, :, :2], compute_uv=False)
        n = len(system)
        assert 2 <= n <= 4 and (singular < 1).all()
        assert (5 + n) / 2 - 1e-9 <= (singular[:, 0] + 2 * singular[:, 1]).sum() <= (6 + n) / 2 + 1e-9
        assert (np.linalg.svd(instance_system(system, rng)[:, :, :2], compute_uv=False) < 1).all()


def test_rendering_is_deterministic_and_a_category_does_not_depend_on_the_set_size():
    images = [image for image, _ in fractal_images(seed=3, categories=4, instances=2, size=32)]
    assert all(np.array_equal(a, b) for a, b in zip(images, [image for image, _ in fractal_images(3, 4, 2, 32)]))
    assert all(np.array_equal(a, b) for a, b in zip(images[:4], [image for image, _ in fractal_images(3, 2, 2, 32)]))
    assert np.array_equal(images[5], fractal_image(3, category=2, instance=1, size=32))
    assert not np.array_equal(images[0], next(fractal_images(4, 1, 1, 32))[0])  # another seed, other systems
    for image in images:
        assert image.dtype == np.uint8 and image.shape == (32, 32) and image.std() > 10  # a shape, not a flat frame


def test_every_category_is_a_distinct_shape():
    """Plain renderings (no colouring, no flips), coarsened to 8 x 8 blocks, of 12 categories differ pairwise by
    three times what two renderings of one system do (the chaos game's own noise)."""
    def shape(category, draw):
        density = _density(category_system(0, category), 64, np.random.default_rng(draw))
        return density.reshape(8, 8, 8, 8).mean((1, 3))

    shapes = [shape(c, c) for c in range(12)]
    noise = np.abs(shapes[0] - shape(0, 99)).mean()
    apart = min(np.abs(shapes[a] - shapes[b]).mean() for a in range(12) for b in range(a))
    assert apart > 3 * noise


def test_the_dataset_builds_through_build_dataset_and_is_cached(tmp_path, monkeypatch):
    monkeypatch.setattr('datasets.config.HF_DATASETS_CACHE', str(tmp_path))
    dataset = build_dataset('fractals', categories=3, instances=10, size=MIN_SIZE, val_fraction=0.2,
                            test_fraction=0.2)
    assert dataset['train'].features['label'].names == ['ifs_0000', 'ifs_0001', 'ifs_0002']
    assert [len(dataset[s]) for s in ('train', 'validation', 'test')] == [18, 6, 6]
    assert sorted(dataset['validation']['label']) == [0, 0, 1, 1, 2, 2]  # stratified
    first = np.asarray(dataset['train'][0]['image'])
    assert first.shape == (MIN_SIZE, MIN_SIZE) and any(tmp_path.iterdir())
    again = build_dataset('fractals', categories=3, instances=10, size=MIN_SIZE, val_fraction=0.2, test_fraction=0.2)
    assert np.array_equal(np.asarray(again['train'][0]['image']), first)


@pytest.mark.parametrize('options, message', [
    (dict(categories=0), 'fractals: categories=0 must be an integer of at least 1.'),
    (dict(instances=0), 'fractals: instances=0 must be an integer of at least 1.'),
    (dict(size=8), f'fractals: size=8 must be an integer of at least {MIN_SIZE} (pixels'),
    (dict(size='big'), "fractals: size='big' must be an integer"),
])
def test_bad_options_are_one_line(options, message):
    with pytest.raises(DatasetError, match=message.replace('(', r'\(').replace('.', r'\.')):
        build_dataset('fractals', **options)


def test_a_backbone_pretrained_on_fractals_fine_tunes_with_a_new_classifier(tmp_path):
    """train.py pretrains on the fractals like any dataset; `--pretrained --reset-classifier` on ELPV then starts
    from every backbone weight (at learning rate 0 they stay), and only the classifier is new."""
    pretext, fine = tmp_path / 'pretext', tmp_path / 'elpv'
    common = [sys.executable, str(ROOT / 'train.py'), '--config', SMOKE, '--epochs', '1', '--mixed-precision', 'no']
    for command in (
            [*common, '--dataset', 'fractals', '--dataset-options', '{categories: 6, instances: 8, size: 32}',
             '--input-pipeline', 'tensor', '--output-dir', str(pretext)],
            [*common, '--model', f'local-dir:{pretext / "best"}', '--pretrained', '--reset-classifier', '--lr', '0',
             '--output-dir', str(fine)]):
        result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                                env={**os.environ, 'HF_DATASETS_CACHE': str(tmp_path / 'hf')})
        assert result.returncode == 0, result.stderr[-3000:]
    before, after = load_file(pretext / 'best' / 'model.safetensors'), load_file(fine / 'best' / 'model.safetensors')
    classifier = {k for k in before if before[k].shape != after[k].shape}
    assert classifier and all(before[k].shape[0] == 6 and after[k].shape[0] == 4 for k in classifier)
    assert all(k.startswith('head.') for k in classifier)
    kept = [k for k in before if k not in classifier and 'running' not in k and 'num_batches' not in k]
    assert any(k.startswith('stem') for k in kept) and all(np.array_equal(before[k], after[k]) for k in kept)
    assert json.loads((fine / 'best' / 'config.json').read_text())['num_classes'] == 4
