"""timm_csba.data: real ELPV data from the package, generated data in the Hub/local schemas, and bad input."""
import argparse
import gzip
import hashlib
import pickle
from pathlib import Path

import datasets
import numpy as np
import pytest
import timm
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image
from PIL import Image as PILImage

import timm_csba  # noqa: F401
from timm_csba.data import (
    CIFAR10_CLASSES, FASHION_MNIST_CLASSES, PV_FAULTS_CLASSES, SAMPLERS, ClassAwareSampler, DatasetError,
    attach_transform, build_dataset,
    build_run_dataset, build_transforms, class_counts, class_weights, find_corrupt_images, imbalance_ratio,
    long_tail_counts, stratified_split,
)
from timm_csba.data.__main__ import main as data_main
from timm_csba.data.builders import FASHION_MNIST_DEBIAN

ELPV_COUNTS = {'functional': 1508, 'possibly_defective': 295, 'likely_defective': 106, 'defective': 715}


@pytest.fixture(scope='module')
def elpv():
    return build_dataset('elpv')


def _png(path, value=0, size=8, mode='RGB'):
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.new(mode, (size, size), color=value if mode == 'L' else (value, value, value)).save(path)


def _imagefolder(root, class_sizes, split=None):
    for name, count in class_sizes.items():
        for i in range(count):
            _png((root / split if split else root) / name / f'{i}.png', value=i % 256)
    return root


def _cifar_schema(num_train=60, num_test=10):
    """A tiny dataset in the Hub CIFAR-10 schema (img, label) with per-image ids."""
    features = Features({'img': Image(), 'label': ClassLabel(names=list(CIFAR10_CLASSES)), 'id': datasets.Value('int32')})

    def split(per_class, offset):
        labels = [c for c in range(10) for _ in range(per_class)]
        ids = list(range(offset, offset + len(labels)))
        images = [np.full((4, 4, 3), i % 256, dtype=np.uint8) for i in ids]
        return Dataset.from_dict({'img': images, 'label': labels, 'id': ids}, features=features)

    return DatasetDict(train=split(num_train, 0), test=split(num_test, 100_000))


# --- ELPV, the embedded real dataset ------------------------------------------------------------------


def test_elpv_has_every_cell_once_with_readable_labels(elpv):
    totals = {name: sum(class_counts(elpv[s])[name] for s in elpv) for name in ELPV_COUNTS}
    assert totals == ELPV_COUNTS
    assert list(elpv) == ['train', 'validation', 'test']
    assert elpv['train'].features['label'].names == list(ELPV_COUNTS)
    assert isinstance(elpv['train'].features['image'], Image)
    image = elpv['test'][0]['image']
    assert image.size == (300, 300) and image.mode == 'L'
    paths = [p for s in elpv.values() for p in s.cast_column('image', Image(decode=False))['image']]
    assert len({p['path'] for p in paths}) == 2624


def test_elpv_splits_are_stratified(elpv):
    for name, total in ELPV_COUNTS.items():
        assert class_counts(elpv['validation'])[name] == round(0.1 * total)
        assert class_counts(elpv['test'])[name] == round(0.2 * total)


def _file_names(split):
    return [v['path'].rsplit('/', 1)[-1] for v in split.cast_column('image', Image(decode=False))['image']]


def test_split_is_fixed_by_the_seed(elpv):
    labels = np.repeat(np.arange(4), [50, 30, 15, 5])
    first = stratified_split(labels, {'validation': 0.1, 'test': 0.2}, seed=0)
    again = stratified_split(labels, {'validation': 0.1, 'test': 0.2}, seed=0)
    other = stratified_split(labels, {'validation': 0.1, 'test': 0.2}, seed=1)
    assert all(np.array_equal(first[s], again[s]) for s in first)
    assert not np.array_equal(first['test'], other['test'])
    assert np.array_equal(np.sort(np.concatenate(list(first.values()))), np.arange(len(labels)))
    # pinned: numpy's PCG64 stream is the same on every platform, so the ELPV split files are too
    digest = hashlib.sha256('\n'.join(_file_names(elpv['test']) + _file_names(elpv['validation'])).encode())
    assert digest.hexdigest() == PINNED_ELPV_SPLIT_SHA256


PINNED_ELPV_SPLIT_SHA256 = 'f81ed56c6fd56557e311e08afe7b2ce2e2ac679b97a5f544cc9b7ba1b0d589fa'


def test_elpv_label_schemes_and_cell_type_filter():
    binary = build_dataset('elpv', labels='binary')
    totals = {n: sum(class_counts(binary[s])[n] for s in binary) for n in ('functional', 'defective')}
    assert totals == {'functional': 1508 + 295, 'defective': 106 + 715}
    typed = build_dataset('elpv', labels='probability_type')
    assert typed['train'].features['label'].names[:2] == ['mono_functional', 'mono_possibly_defective']
    assert len(typed['train'].features['label'].names) == 8
    mono = build_dataset('elpv', cell_type='mono')
    assert sum(len(s) for s in mono.values()) == 1074
    assert set(mono['train']['cell_type']) == {'mono'}


def test_class_weights_inverse_and_effective_number():
    split = Dataset.from_dict({'label': [0] * 6 + [1] * 3 + [2] * 1},
                              features=Features({'label': ClassLabel(names=['a', 'b', 'c'])}))
    torch.testing.assert_close(class_weights(split), torch.tensor([10 / 18, 10 / 9, 10 / 3]))
    beta = 0.9
    raw = torch.tensor([(1 - beta) / (1 - beta ** n) for n in (6, 3, 1)], dtype=torch.float64)
    torch.testing.assert_close(class_weights(split, 'effective_number', beta=beta), (raw * 3 / raw.sum()).float())
    sqrt = class_weights(split, 'sqrt_inverse')
    torch.testing.assert_close(sqrt / sqrt[2], torch.tensor([6 ** -0.5, 3 ** -0.5, 1.0]))
    assert (sqrt * torch.tensor([6.0, 3.0, 1.0])).sum().item() == pytest.approx(10.0)  # mean sample weight 1
    assert imbalance_ratio(split) == 6
    with pytest.raises(DatasetError, match="Unknown class weight scheme 'sqrt'"):
        class_weights(split, 'sqrt')


def test_class_counts_include_empty_classes():
    split = Dataset.from_dict({'label': [0, 0, 2]}, features=Features({'label': ClassLabel(names=['a', 'b', 'c'])}))
    assert class_counts(split) == {'a': 2, 'b': 0, 'c': 1}
    with pytest.raises(DatasetError, match='infinite'):
        class_weights(split)


# --- transforms -----------------------------------------------------------------------------------------


def test_transforms_follow_the_models_channels(elpv):
    native = dict(input_size=(3, 300, 300))  # the cells' own size: the eval transform only normalises
    gray_model = timm.create_model('csba_squeeze', in_chans=1, pretrained_cfg_overlay=native)
    rgb_model = timm.create_model('csba_squeeze', in_chans=3, pretrained_cfg_overlay=native)
    image = elpv['test'][0]['image']
    gray = build_transforms(gray_model, is_training=False)(image)
    rgb = build_transforms(rgb_model, is_training=False)(image)
    assert gray.shape == (1, 300, 300) and rgb.shape == (3, 300, 300)
    torch.testing.assert_close(rgb[0], rgb[2])
    torch.testing.assert_close(gray[0], rgb[0])
    expected = (torch.from_numpy(np.asarray(image, dtype=np.float32) / 255) - 0.597) / 0.161
    torch.testing.assert_close(gray[0], expected, rtol=1e-4, atol=1e-4)
    train = build_transforms(dict(input_size=(1, 128, 128), mean=(0.5,), std=(0.5,)), is_training=True,
                             hflip=0.5, vflip=0.5, auto_augment='rand-m9-mstd0.5')
    assert train(image).shape == (1, 128, 128)


def test_dataloader_with_workers_yields_batches(elpv):
    transform = build_transforms(dict(input_size=(1, 64, 64), mean=(0.5,), std=(0.5,)), is_training=True)
    loader = torch.utils.data.DataLoader(attach_transform(elpv['validation'], transform), batch_size=16,
                                         num_workers=2)
    batch = next(iter(loader))
    assert batch['pixel_values'].shape == (16, 1, 64, 64)
    assert batch['label'].dtype == torch.int64


# --- local folders and Hub-schema data --------------------------------------------------------------------


def test_imagefolder_without_splits_gets_stratified_ones(tmp_path):
    root = _imagefolder(tmp_path / 'imgs', {'cat': 20, 'dog': 10})
    dataset = build_dataset('imagefolder', data_dir=str(root))
    assert dataset['train'].features['label'].names == ['cat', 'dog']
    assert {s: class_counts(dataset[s]) for s in dataset} == {
        'train': {'cat': 14, 'dog': 7}, 'validation': {'cat': 2, 'dog': 1}, 'test': {'cat': 4, 'dog': 2}}


def test_a_shipped_test_split_is_kept(tmp_path):
    root = tmp_path / 'imgs'
    _imagefolder(root, {'a': 20, 'b': 10}, split='train')
    _imagefolder(root, {'a': 3, 'b': 3}, split='test')
    dataset = build_dataset('imagefolder', data_dir=str(root))
    assert class_counts(dataset['test']) == {'a': 3, 'b': 3}
    assert class_counts(dataset['validation']) == {'a': 2, 'b': 1}
    assert len(dataset['train']) == 27


def test_pv_faults_from_a_local_folder(tmp_path):
    root = _imagefolder(tmp_path / 'pv', {name: 10 for name in PV_FAULTS_CLASSES})
    dataset = build_dataset('pv_faults', data_dir=str(root))
    assert dataset['train'].features['label'].names == sorted(PV_FAULTS_CLASSES)
    bad = _imagefolder(tmp_path / 'other', {'x': 5, 'y': 5})
    with pytest.raises(DatasetError, match='pv_faults expects the classes Bird-drop'):
        build_dataset('pv_faults', data_dir=str(bad))


def test_hub_dataset_with_named_columns(tmp_path):
    """A repo laid out as on the Hub (data/<split>-*.parquet); load_dataset resolves it as it would a Hub id."""
    repo = tmp_path / 'owner_name'
    (repo / 'data').mkdir(parents=True)
    source = _cifar_schema(num_train=10, num_test=2)
    source['train'].to_parquet(str(repo / 'data' / 'train-00000-of-00001.parquet'))
    source['test'].to_parquet(str(repo / 'data' / 'test-00000-of-00001.parquet'))
    dataset = build_dataset('hub', hub_id=str(repo), image_column='img', label_column='label')
    assert dataset['train'].features['label'].names == list(CIFAR10_CLASSES)
    assert len(dataset['test']) == 20 and len(dataset['validation']) == 10
    with pytest.raises(DatasetError, match=r"no image column 'image'; columns found: img, label, id"):
        build_dataset('hub', hub_id=str(repo))


def test_cifar10_lt_profile_and_untouched_test(tmp_path):
    source = _cifar_schema(num_train=60, num_test=10)
    source.save_to_disk(str(tmp_path / 'cifar'))
    dataset = build_dataset('cifar10_lt', data_dir=str(tmp_path / 'cifar'), imbalance_ratio=10, seed=3)
    expected = long_tail_counts(60, 10, 10)
    assert expected == [60, 46, 35, 27, 21, 16, 12, 10, 7, 6]
    pooled = {n: class_counts(dataset['train'])[n] + class_counts(dataset['validation'])[n] for n in CIFAR10_CLASSES}
    assert list(pooled.values()) == expected
    assert class_counts(dataset['test']) == {n: 10 for n in CIFAR10_CLASSES}
    test_ids = set(dataset['test']['id'])
    assert test_ids == set(source['test']['id'])
    assert not test_ids & set(dataset['validation']['id'])
    again = build_dataset('cifar10_lt', data_dir=str(tmp_path / 'cifar'), imbalance_ratio=10, seed=3)
    assert again['train']['id'] == dataset['train']['id']


def test_ldam_profile_at_ratio_100():
    counts = long_tail_counts(5000, 10, 100)
    assert counts == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert sum(counts) == 12406


def test_cifar10_python_batches(tmp_path):
    folder = tmp_path / 'cifar-10-batches-py'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, per_class in [(f'data_batch_{i}', 4) for i in range(1, 6)] + [('test_batch', 2)]:
        labels = [c for c in range(10) for _ in range(per_class)]
        batch = {b'batch_label': name.encode(), b'labels': labels,
                 b'data': rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8),
                 b'filenames': [b'x.png'] * len(labels)}
        with open(folder / name, 'wb') as f:
            pickle.dump(batch, f, protocol=2)
    dataset = build_dataset('cifar10_lt', data_dir=str(folder), imbalance_ratio=2)
    assert len(dataset['test']) == 20
    assert sum(len(dataset[s]) for s in ('train', 'validation')) == sum(long_tail_counts(20, 10, 2))
    assert dataset['test'][0]['image'].size == (32, 32)

    class Exploit:
        def __reduce__(self):
            return (print, ('pwned',))
    with open(folder / 'data_batch_1', 'wb') as f:
        pickle.dump({b'data': Exploit()}, f, protocol=2)
    with pytest.raises(DatasetError, match=r'print, which a CIFAR batch never holds'):
        build_dataset('cifar10_lt', data_dir=str(folder))


# --- bad input --------------------------------------------------------------------------------------------


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DatasetError, match="Unknown dataset 'elvp'; known datasets: elpv, pv_faults, cifar10, "
                                           "cifar10_lt, fashion_mnist"):
        build_dataset('elvp')


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(DatasetError, match=r"Unknown option\(s\) label for dataset 'elpv'; its options are: "
                                           r"cell_type, imbalance_ratio, labels"):
        build_dataset('elpv', label='binary')


def test_local_only_dataset_without_data_dir_says_where_to_get_it():
    with pytest.raises(DatasetError, match='kaggle.com.*data_dir'):
        build_dataset('pv_faults')
    with pytest.raises(DatasetError, match="needs|takes data_dir"):
        build_dataset('imagefolder')


def test_class_with_no_training_images(tmp_path):
    root = _imagefolder(tmp_path / 'imgs', {'big': 20, 'tiny': 1})
    with pytest.raises(DatasetError, match=r"class\(es\) tiny have no train images"):
        build_dataset('imagefolder', data_dir=str(root), test_fraction=0.5, val_fraction=0.1)
    source = _cifar_schema(num_train=20, num_test=2)
    source.save_to_disk(str(tmp_path / 'cifar'))
    with pytest.raises(DatasetError, match='imbalance_ratio=100 leaves the last class of .* with no image .20 per '
                                           'class at most.; use a ratio of at most 20'):
        build_dataset('cifar10_lt', data_dir=str(tmp_path / 'cifar'), imbalance_ratio=100)


@pytest.mark.parametrize('kwargs, message', [
    (dict(imbalance_ratio=0.5), 'imbalance_ratio=0.5 is below 1'),
    (dict(val_fraction=0.0), 'val_fraction=0.0 leaves a split empty'),
    (dict(val_fraction=0.5, test_fraction=0.5), 'leaves no training images'),
])
def test_bad_numbers(tmp_path, kwargs, message):
    _cifar_schema(num_train=20, num_test=2).save_to_disk(str(tmp_path / 'cifar'))
    with pytest.raises(DatasetError, match=message):
        build_dataset('cifar10_lt', data_dir=str(tmp_path / 'cifar'), **kwargs)


@pytest.mark.parametrize('damage', ['garbage', 'truncated'])
def test_corrupt_image_names_the_file(tmp_path, damage):
    root = _imagefolder(tmp_path / 'imgs', {'a': 10, 'b': 10})
    victim = root / 'a' / '3.png'
    _png(victim, size=64)
    data = victim.read_bytes()
    victim.write_bytes(b'not an image at all' if damage == 'garbage' else data[:len(data) // 2])
    dataset = build_dataset('imagefolder', data_dir=str(root), seed=0)
    split = next(s for s in dataset.values() if str(victim) in
                 [v['path'] for v in s.cast_column('image', Image(decode=False))['image']])
    errors = find_corrupt_images(split)
    assert len(errors) == 1 and str(victim) in next(iter(errors.values()))
    transform = build_transforms(dict(input_size=(3, 8, 8), mean=(0.5,), std=(0.5,)), is_training=False)
    loader = torch.utils.data.DataLoader(attach_transform(split, transform), batch_size=len(split), num_workers=1)
    with pytest.raises(Exception, match=f'Cannot decode image {victim}.*Remove or replace the file'):
        next(iter(loader))


def test_run_dataset_decodes_only_the_splits_asked_for(tmp_path):
    """Rescoring a run's test split (hub export --weights-dtype float16) decodes the test images only: a bad
    train image does not stop it, a bad test image is still named."""
    root = _imagefolder(tmp_path / 'imgs', {'a': 10, 'b': 10})
    args = argparse.Namespace(dataset='imagefolder', data_dir=str(root), hub_id=None, dataset_options={},
                              split_seed=0, val_fraction=0.2, test_fraction=0.2, limit_train=0, limit_eval=0,
                              skip_corrupt=False)
    paths = {name: [v['path'] for v in split.cast_column('image', Image(decode=False))['image']]
             for name, split in build_run_dataset(args)[0].items()}
    Path(paths['train'][0]).write_bytes(b'not an image at all')
    with pytest.raises(DatasetError, match='1 image.s. cannot be decoded'):
        build_run_dataset(args)
    test, skipped = build_run_dataset(args, splits=('test',))
    assert list(test) == ['test'] and len(test['test']) == len(paths['test']) and skipped == 0
    Path(paths['test'][0]).write_bytes(b'not an image either')
    with pytest.raises(DatasetError, match=f'1 image.s. cannot be decoded \\({paths["test"][0]}\\)'):
        build_run_dataset(args, splits=('test',))


def test_stats_cli_prints_counts_and_writes_a_chart(tmp_path, capsys):
    # in this process (no interpreter start-up); an exception other than SystemExit would be a stack trace
    out = tmp_path / 'elpv.png'
    data_main(['stats', 'elpv', '--out', str(out)])
    printed = capsys.readouterr().out
    assert 'likely_defective' in printed and 'imbalance ratio (train, max/min): 14.26' in printed
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    with pytest.raises(SystemExit) as bad:
        data_main(['stats', 'pv_faults'])
    assert bad.value.code == 2 and 'kaggle' in capsys.readouterr().err


@pytest.mark.parametrize('sampler, expected_share', [
    ('balanced', [0.25, 0.25, 0.25, 0.25]),
    ('sqrt', [30 / 54, 10 / 54, 4 / 54, 10 / 54]),  # n_c^(1/2) / sum: counts 900, 100, 16, 100
])
def test_class_aware_sampler_draws_classes_in_the_asked_proportions(sampler, expected_share):
    labels = [0] * 900 + [1] * 100 + [2] * 16 + [3] * 100
    draws = ClassAwareSampler(labels, SAMPLERS[sampler], seed=0)
    assert len(draws) == len(labels)
    drawn = []
    for epoch in range(20):
        draws.set_epoch(epoch)
        drawn += [labels[i] for i in draws]
    share = np.bincount(drawn, minlength=4) / len(drawn)
    np.testing.assert_allclose(share, expected_share, atol=0.015)


def test_class_aware_sampler_is_seeded_by_seed_and_epoch():
    labels = [0] * 50 + [1] * 5
    a, b = ClassAwareSampler(labels, 0.0, seed=1), ClassAwareSampler(labels, 0.0, seed=1)
    a.set_epoch(3), b.set_epoch(3)
    assert list(a) == list(b)
    b.set_epoch(4)
    assert list(a) != list(b)
    assert list(a) != list(ClassAwareSampler(labels, 0.0, seed=2))


# --- Fashion-MNIST and the long-tail option of any balanced dataset ------------------------------------------


def _idx(path: Path, array: np.ndarray, gz: bool = True) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b''.join(int(d).to_bytes(4, 'big') for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (path.with_name(path.name + '.gz') if gz else path).write_bytes(gzip.compress(data) if gz else data)


def _fashion_mnist_folder(root: Path, per_class: int = 60, test_per_class: int = 3, gz: bool = True) -> Path:
    """The four IDX files in torchvision's layout (root/FashionMNIST/raw), each class's images a constant grey."""
    folder = root / 'FashionMNIST' / 'raw'
    folder.mkdir(parents=True)
    for prefix, n in (('train', per_class), ('t10k', test_per_class)):
        labels = np.repeat(np.arange(10), n)
        _idx(folder / f'{prefix}-images-idx3-ubyte', np.broadcast_to((labels * 20)[:, None, None], (len(labels), 28,
                                                                                                     28)), gz)
        _idx(folder / f'{prefix}-labels-idx1-ubyte', labels, gz)
    return folder


@pytest.mark.parametrize('gz', [True, False])
def test_fashion_mnist_from_idx_files_with_the_long_tail_profile(tmp_path, gz):
    _fashion_mnist_folder(tmp_path, gz=gz)
    dataset = build_dataset('fashion_mnist', data_dir=str(tmp_path), seed=1)
    assert dataset['train'].features['label'].names == list(FASHION_MNIST_CLASSES)
    assert [len(dataset[s]) for s in ('train', 'validation', 'test')] == [540, 60, 30]
    image = dataset['test'][29]['image']
    assert image.size == (28, 28) and image.mode == 'L' and image.getpixel((0, 0)) == 180
    long_tail = build_dataset('fashion_mnist', data_dir=str(tmp_path / 'FashionMNIST' / 'raw'), seed=1,
                              imbalance_ratio=10)
    pooled = [class_counts(long_tail['train'])[n] + class_counts(long_tail['validation'])[n]
              for n in FASHION_MNIST_CLASSES]
    assert pooled == long_tail_counts(60, 10, 10) == [60, 46, 35, 27, 21, 16, 12, 10, 7, 6]
    assert class_counts(long_tail['test']) == {n: 3 for n in FASHION_MNIST_CLASSES}  # untouched
    again = build_dataset('fashion_mnist', data_dir=str(tmp_path), seed=1, imbalance_ratio=10)
    assert [np.asarray(x).mean() for x in again['train']['image']] == [np.asarray(x).mean()
                                                                      for x in long_tail['train']['image']]


@pytest.mark.skipif(not FASHION_MNIST_DEBIAN.is_dir(), reason='apt-get install dataset-fashion-mnist')
def test_fashion_mnist_lt_from_the_debian_package_at_ratio_100():
    dataset = build_dataset('fashion_mnist', imbalance_ratio=100)
    counts = [class_counts(dataset['train'])[n] + class_counts(dataset['validation'])[n] for n in FASHION_MNIST_CLASSES]
    assert counts == long_tail_counts(6000, 10, 100) and sum(counts) == 14886
    assert len(dataset['test']) == 10000


def test_the_long_tail_option_of_any_balanced_dataset_and_one_line_for_an_unbalanced_one(tmp_path):
    root = _imagefolder(tmp_path / 'balanced', {'a': 30, 'b': 30, 'c': 30})
    dataset = build_dataset('imagefolder', data_dir=str(root), seed=0, imbalance_ratio=4, test_fraction=0.2,
                            val_fraction=0.1)
    assert class_counts(dataset['test']) == {'a': 6, 'b': 6, 'c': 6}  # carved first, balanced, untouched
    pooled = [class_counts(dataset['train'])[n] + class_counts(dataset['validation'])[n] for n in 'abc']
    assert pooled == long_tail_counts(24, 3, 4) == [24, 12, 6]
    with pytest.raises(DatasetError, match="imbalance_ratio needs a balanced train split to cut the profile from; "
                                           "elpv's has 85 to 1206 images per class"):
        build_dataset('elpv', imbalance_ratio=10)


@pytest.mark.parametrize('damage, message', [
    ('missing', 'no Fashion-MNIST IDX files .* apt-get install dataset-fashion-mnist .* --data-dir'),
    ('truncated', 'train-images-idx3-ubyte is truncated'),
    ('swapped', 'train-images-idx3-ubyte holds labels of type 0x08; expected images'),
    ('not_idx', 'is not an IDX file'),
    ('one_missing', 'has no t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz'),
])
def test_bad_idx_files_are_one_line_naming_the_fix(tmp_path, damage, message):
    folder = _fashion_mnist_folder(tmp_path, gz=False)
    images, labels = folder / 'train-images-idx3-ubyte', folder / 't10k-labels-idx1-ubyte'
    if damage == 'missing':
        images.unlink()
    elif damage == 'truncated':
        images.write_bytes(images.read_bytes()[:-100])
    elif damage == 'swapped':
        images.write_bytes((folder / 'train-labels-idx1-ubyte').read_bytes())
    elif damage == 'not_idx':
        images.write_bytes(b'PK\x03\x04 a zip file')
    else:
        labels.unlink()
    with pytest.raises(DatasetError, match=message) as e:
        build_dataset('fashion_mnist', data_dir=str(tmp_path))
    assert '\n' not in str(e.value)
