"""Class-imbalanced image-classification datasets as HF `datasets`, with timm transforms and class weights.

Every builder returns a `datasets.DatasetDict` with splits `train`, `validation` and `test`, features `image`
(`datasets.Image`) and `label` (`ClassLabel` with readable names). Splits made here are stratified by label and
depend only on the seed (numpy's PCG64 stream), so the same seed gives the same index lists on any machine;
a dataset that ships its own test split keeps it, and validation is always carved from the train pool.

    elpv         ELPV electroluminescence solar cells, from the `elpv-dataset` package (embedded, default)
    pv_faults    Kaggle "Solar Panel Clean and Faulty Images" (6 classes), local imagefolder or Hub id
    cifar10_lt   CIFAR-10 subsampled to a long tail, n_i = floor(5000 * IR^(-i/9)) (LDAM-DRW protocol)
    hub          any Hub dataset id, given its image and label columns
    imagefolder  any local folder: imagefolder layout, parquet files, or a `save_to_disk` copy

`python -m timm_csba.data stats NAME [options]` prints per-class counts per split and writes a bar chart.
"""
import argparse
import inspect
import io
import math
import os
import pickle
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import datasets
import numpy as np
import torch
from datasets import ClassLabel, DatasetDict, Features, Image, Value
from PIL import Image as PILImage

__all__ = [
    'DATASETS', 'SPLITS', 'DatasetError', 'build_dataset', 'stratified_split', 'class_counts', 'class_weights',
    'imbalance_ratio', 'build_transforms', 'attach_transform', 'decode_image', 'find_corrupt_images', 'check_images',
    'error_line', 'default_num_workers', 'long_tail_counts', 'weights_from_counts', 'SAMPLERS', 'ClassAwareSampler',
    'DATASET_ARGUMENTS', 'add_dataset_arguments', 'build_dataset_from_args', 'build_run_dataset',
]

SPLITS = ('train', 'validation', 'test')
ELPV_PROBABILITY_NAMES = ('functional', 'possibly_defective', 'likely_defective', 'defective')
ELPV_CELL_TYPES = ('mono', 'poly')
PV_FAULTS_CLASSES = ('Bird-drop', 'Clean', 'Dusty', 'Electrical-damage', 'Physical-Damage', 'Snow-Covered')
PV_FAULTS_URL = 'https://www.kaggle.com/datasets/pythonafroz/solar-panel-images'
CIFAR10_HUB_ID = 'uoft-cs/cifar10'
CIFAR10_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck')
_SPLIT_ALIASES = {'valid': 'validation', 'val': 'validation', 'dev': 'validation', 'eval': 'validation'}


class DatasetError(ValueError):
    """Bad dataset input; the message names the problem and how to fix it."""


# ---------------------------------------------------------------------------------------------------------
# splits


def stratified_split(
        labels: Sequence[int],
        fractions: Dict[str, float],
        seed: int = 0,
) -> Dict[str, np.ndarray]:
    """Return sorted index arrays for each split in `fractions` plus 'train' (the rest), stratified by label.

    Each class is shuffled with one seeded numpy Generator, visited in label order, and cut by rounding
    fraction * class size, so the result depends on the labels and the seed only.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts = {name: [] for name in (*fractions, 'train')}
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        start = 0
        for name, fraction in fractions.items():
            count = int(math.floor(fraction * len(members) + 0.5))
            parts[name].append(members[start:start + count])
            start += count
        parts['train'].append(members[start:])
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, value in (('val_fraction', val_fraction), ('test_fraction', test_fraction)):
        if not 0 < value < 1:
            raise DatasetError(f'{name}={value} leaves a split empty or takes all images; use a value in (0, 1).')
    if val_fraction + test_fraction >= 1:
        raise DatasetError(
            f'val_fraction + test_fraction = {val_fraction + test_fraction:.3g} leaves no training images; '
            f'keep their sum below 1.')


def _split_off(dataset: datasets.Dataset, fractions: Dict[str, float], seed: int) -> Dict[str, datasets.Dataset]:
    indices = stratified_split(dataset['label'], fractions, seed)
    return {name: dataset.select(indices[name]) for name in SPLITS if name in indices}


# ---------------------------------------------------------------------------------------------------------
# ELPV (embedded)


def _elpv_root() -> Path:
    import elpv_dataset
    return Path(elpv_dataset.__file__).parent / 'data'


def _build_elpv(
        *,
        seed: int,
        val_fraction: float,
        test_fraction: float,
        labels: str = 'probability',
        cell_type: Optional[str] = None,
) -> DatasetDict:
    """ELPV from the `elpv-dataset` package: 2,624 grayscale 300x300 cells with defect probability and type."""
    root = _elpv_root()
    rows = [line.split() for line in (root / 'labels.csv').read_text().splitlines() if line.strip()]
    paths = [str(root / path) for path, _, _ in rows]
    probs = np.array([float(p) for _, p, _ in rows])
    types = [t for _, _, t in rows]
    grade = np.rint(probs * 3).astype(int)  # 0, 1/3, 2/3, 1 -> 0..3

    if labels == 'probability':
        names, label_ids = ELPV_PROBABILITY_NAMES, grade
    elif labels == 'binary':
        names, label_ids = ('functional', 'defective'), (probs >= 0.5).astype(int)
    elif labels == 'probability_type':
        names = tuple(f'{t}_{n}' for t in ELPV_CELL_TYPES for n in ELPV_PROBABILITY_NAMES)
        label_ids = np.array([ELPV_CELL_TYPES.index(t) * 4 + g for t, g in zip(types, grade)])
    else:
        raise DatasetError(f"Unknown ELPV labels={labels!r}; use 'probability', 'binary' or 'probability_type'.")

    keep = np.arange(len(rows))
    if cell_type is not None:
        if cell_type not in ELPV_CELL_TYPES:
            raise DatasetError(f"Unknown ELPV cell_type={cell_type!r}; use 'mono', 'poly' or None for both.")
        keep = np.flatnonzero(np.array(types) == cell_type)

    features = Features({
        'image': Image(),
        'label': ClassLabel(names=list(names)),
        'defect_probability': Value('float32'),
        'cell_type': Value('string'),
    })
    dataset = datasets.Dataset.from_dict({
        'image': [paths[i] for i in keep],
        'label': [int(label_ids[i]) for i in keep],
        'defect_probability': [float(probs[i]) for i in keep],
        'cell_type': [types[i] for i in keep],
    }, features=features)
    return DatasetDict(_split_off(dataset, {'validation': val_fraction, 'test': test_fraction}, seed))


# ---------------------------------------------------------------------------------------------------------
# generic loading: Hub id or local folder


def _load_raw(data_dir: Optional[str], hub_id: Optional[str]) -> DatasetDict:
    if hub_id is not None:
        try:
            loaded = datasets.load_dataset(hub_id)
        except ConnectionError as e:
            raise DatasetError(
                f'Cannot reach {hub_id!r} on the Hugging Face Hub ({e}). Load it once where the Hub is reachable '
                f'(it is then cached for HF_HUB_OFFLINE=1), or pass data_dir=<a local copy>.') from None
    else:
        path = Path(data_dir)
        if not path.exists():
            raise DatasetError(f'data_dir {str(path)!r} does not exist.')
        if (path / 'dataset_dict.json').exists() or (path / 'state.json').exists():
            loaded = datasets.load_from_disk(str(path))
        else:
            # imagefolder layout (one sub-folder per class, optionally under train/ test/ ...) or parquet files
            loaded = datasets.load_dataset(str(path))
    if isinstance(loaded, datasets.Dataset):
        loaded = DatasetDict(train=loaded)
    return DatasetDict({_SPLIT_ALIASES.get(name, name): split for name, split in loaded.items()})


def _standardise_columns(dataset: DatasetDict, image_column: str, label_column: str, source: str) -> DatasetDict:
    """Rename to `image`/`label`, make `image` a datasets.Image and `label` a ClassLabel with names."""
    found = dataset[next(iter(dataset))].column_names
    for role, column in (('image', image_column), ('label', label_column)):
        if column not in found:
            raise DatasetError(
                f'{source} has no {role} column {column!r}; columns found: {", ".join(found)}. '
                f'Pass {role}_column=<one of them>.')
    for target, column in (('image', image_column), ('label', label_column)):
        if column != target:
            if target in found:
                dataset = dataset.remove_columns(target)
            dataset = dataset.rename_column(column, target)

    features = dataset[next(iter(dataset))].features
    if not isinstance(features['image'], Image):
        dataset = dataset.cast_column('image', Image())
    label_feature = features['label']
    if not isinstance(label_feature, ClassLabel):
        if label_feature.dtype == 'string':
            names = sorted({name for split in dataset.values() for name in split.unique('label')})
        else:
            names = [str(i) for i in range(max(max(split.unique('label')) for split in dataset.values()) + 1)]
        dataset = dataset.cast_column('label', ClassLabel(names=names))
    return dataset


def _three_splits(dataset: DatasetDict, seed: int, val_fraction: float, test_fraction: float) -> DatasetDict:
    """Keep shipped splits; carve what is missing from the train pool (validation never from test)."""
    if 'train' not in dataset:
        raise DatasetError(f'The dataset has no train split (splits found: {", ".join(dataset)}).')
    fractions = {}
    if 'validation' not in dataset:
        fractions['validation'] = val_fraction
    if 'test' not in dataset:
        fractions['test'] = test_fraction
    splits = dict(dataset)
    if fractions:
        splits.update(_split_off(dataset['train'], fractions, seed))
    return DatasetDict({name: splits[name] for name in SPLITS})


def _build_folder_or_hub(
        *,
        data_dir: Optional[str],
        hub_id: Optional[str],
        seed: int,
        val_fraction: float,
        test_fraction: float,
        image_column: str = 'image',
        label_column: str = 'label',
        source: str = 'dataset',
) -> DatasetDict:
    raw = _load_raw(data_dir, hub_id)
    return _three_splits(_standardise_columns(raw, image_column, label_column, source), seed, val_fraction,
                         test_fraction)


def _generic_builder(name: str) -> Callable[..., DatasetDict]:
    """Builder for 'hub' (takes hub_id only) or 'imagefolder' (takes data_dir only), given image/label columns."""
    uses_hub = name == 'hub'

    def build(
            *,
            hub_id: Optional[str],
            data_dir: Optional[str],
            seed: int,
            val_fraction: float,
            test_fraction: float,
            image_column: str = 'image',
            label_column: str = 'label',
    ) -> DatasetDict:
        source, other = (hub_id, data_dir) if uses_hub else (data_dir, hub_id)
        if source is None or other is not None:
            raise DatasetError(
                "The 'hub' dataset takes hub_id='owner/name' only (for a local folder use 'imagefolder')." if uses_hub
                else "The 'imagefolder' dataset takes data_dir=<folder> only (for a Hub dataset use 'hub').")
        return _build_folder_or_hub(
            data_dir=None if uses_hub else data_dir, hub_id=hub_id if uses_hub else None, seed=seed,
            val_fraction=val_fraction, test_fraction=test_fraction, image_column=image_column,
            label_column=label_column, source=str(source))

    return build


def _build_pv_faults(
        *,
        hub_id: Optional[str],
        data_dir: Optional[str],
        seed: int,
        val_fraction: float,
        test_fraction: float,
) -> DatasetDict:
    """The paper's Kaggle PV fault images (6 classes) from a local imagefolder or a Hub copy."""
    if hub_id is None and data_dir is None:
        raise DatasetError(
            f'pv_faults is not embedded: download "Solar Panel Clean and Faulty Images" from {PV_FAULTS_URL}, '
            f'unpack it so that data_dir holds one folder per class ({", ".join(PV_FAULTS_CLASSES)}), and pass '
            f'data_dir=<that folder> (or hub_id=<a Hub copy>).')
    dataset = _build_folder_or_hub(data_dir=data_dir, hub_id=hub_id, seed=seed, val_fraction=val_fraction,
                                   test_fraction=test_fraction, source=str(data_dir or hub_id))
    found = dataset['train'].features['label'].names
    if sorted(n.lower() for n in found) != sorted(n.lower() for n in PV_FAULTS_CLASSES):
        raise DatasetError(
            f'pv_faults expects the classes {", ".join(PV_FAULTS_CLASSES)}; found {", ".join(found)}. '
            f"For another class set use the 'imagefolder' or 'hub' dataset.")
    return dataset


# ---------------------------------------------------------------------------------------------------------
# CIFAR-10-LT


class _CifarUnpickler(pickle.Unpickler):
    """Admit only the plain types the official CIFAR-10 python batches contain (dicts, lists, numpy arrays)."""
    ALLOWED = {
        ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
        ('numpy', 'ndarray'), ('numpy', 'dtype'), ('_codecs', 'encode'),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f'CIFAR batch refers to {module}.{name}, which a CIFAR batch never holds.')
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> Dict[str, Any]:
    with open(path, 'rb') as f:
        try:
            batch = _CifarUnpickler(f, encoding='latin1').load()
        except (pickle.UnpicklingError, EOFError, ValueError) as e:
            raise DatasetError(f'{path} is not a CIFAR-10 python batch ({e}); re-download cifar-10-python.tar.gz.')
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def _load_cifar_batches(folder: Path) -> DatasetDict:
    splits = {}
    for split, files in (('train', [f'data_batch_{i}' for i in range(1, 6)]), ('test', ['test_batch'])):
        present = [folder / f for f in files if (folder / f).exists()]
        if not present:
            raise DatasetError(f'{folder} has no {files[0]}; expected the cifar-10-batches-py folder.')
        batches = [_read_cifar_batch(p) for p in present]
        images = np.concatenate([b['data'] for b in batches]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = [int(label) for b in batches for label in b['labels']]
        features = Features({'img': Image(), 'label': ClassLabel(names=list(CIFAR10_CLASSES))})
        splits[split] = datasets.Dataset.from_dict({'img': list(images), 'label': labels}, features=features)
    return DatasetDict(splits)


def long_tail_counts(head_count: int, num_classes: int, imbalance_ratio: float) -> list:
    """Per-class sizes n_i = floor(head_count * IR^(-i / (C - 1))) of the LDAM-DRW long-tail profile."""
    return [int(head_count * imbalance_ratio ** (-i / (num_classes - 1))) for i in range(num_classes)]


def _build_cifar10_lt(
        *,
        hub_id: Optional[str],
        data_dir: Optional[str],
        seed: int,
        val_fraction: float,
        test_fraction: float,
        imbalance_ratio: float = 100.0,
        image_column: str = 'img',
        label_column: str = 'label',
) -> DatasetDict:
    """CIFAR-10 with a long-tailed train split; the balanced test split is kept as shipped (test_fraction unused).

    The head class keeps min-class-count images (5000 for CIFAR-10) and class i keeps
    floor(5000 * IR^(-i/9)); validation is then carved, stratified, from that long-tailed train pool.
    """
    if imbalance_ratio < 1:
        raise DatasetError(f'imbalance_ratio={imbalance_ratio} < 1; it is n_max / n_min, so use a value >= 1.')
    if data_dir is not None and (Path(data_dir) / 'data_batch_1').exists():
        raw = _load_cifar_batches(Path(data_dir))
    elif data_dir is not None:
        raw = _load_raw(data_dir, None)
    else:
        raw = _load_raw(None, hub_id or CIFAR10_HUB_ID)
    raw = _standardise_columns(raw, image_column, label_column, str(data_dir or hub_id or CIFAR10_HUB_ID))
    if 'test' not in raw:
        raise DatasetError('cifar10_lt needs the official test split; the source has only ' + ', '.join(raw))

    pool = raw['train']
    labels = np.asarray(pool['label'])
    num_classes = pool.features['label'].num_classes
    available = np.bincount(labels, minlength=num_classes)
    targets = long_tail_counts(int(available.min()), num_classes, imbalance_ratio)
    rng = np.random.default_rng(seed)
    keep = np.sort(np.concatenate([
        rng.permutation(np.flatnonzero(labels == c))[:targets[c]] for c in range(num_classes)]))
    long_tail = _split_off(pool.select(keep), {'validation': val_fraction}, seed)
    return DatasetDict(train=long_tail['train'], validation=long_tail['validation'], test=raw['test'])


# ---------------------------------------------------------------------------------------------------------
# entry point


_BUILDERS: Dict[str, Callable[..., DatasetDict]] = {
    'elpv': _build_elpv,
    'pv_faults': _build_pv_faults,
    'cifar10_lt': _build_cifar10_lt,
    'hub': _generic_builder('hub'),
    'imagefolder': _generic_builder('imagefolder'),
}
DATASETS = tuple(_BUILDERS)


def build_dataset(
        name: str,
        *,
        data_dir: Optional[str] = None,
        hub_id: Optional[str] = None,
        seed: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        **options: Any,
) -> DatasetDict:
    """Return the dataset `name` as a DatasetDict with `train`, `validation`, `test` splits of image + label."""
    if name not in _BUILDERS:
        raise DatasetError(f'Unknown dataset {name!r}; known datasets: {", ".join(DATASETS)}.')
    builder = _BUILDERS[name]
    accepted = set(inspect.signature(builder).parameters) - {'seed', 'val_fraction', 'test_fraction'}
    unknown = set(options) - accepted
    if unknown:
        valid = sorted(accepted - {'data_dir', 'hub_id'})
        raise DatasetError(f'Unknown option(s) {", ".join(sorted(unknown))} for dataset {name!r}; '
                           f'its options are: {", ".join(valid) or "none"}.')
    _check_fractions(val_fraction, test_fraction)
    kwargs = dict(seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, **options)
    if 'data_dir' in accepted:
        kwargs.update(data_dir=data_dir, hub_id=hub_id)
    elif data_dir is not None or hub_id is not None:
        raise DatasetError(f'Dataset {name!r} is embedded; it takes no data_dir or hub_id.')
    dataset = builder(**kwargs)
    _check_every_class_present(dataset, name)
    return dataset


# the flags that name a dataset and its fixed split; train.py, evaluate and diagnose share them, so that a run's
# split is rebuilt exactly from its args.yaml
DATASET_ARGUMENTS = ('dataset', 'data_dir', 'hub_id', 'dataset_options', 'split_seed', 'val_fraction', 'test_fraction')


def add_dataset_arguments(parser) -> None:
    """Add the dataset and split flags (DATASET_ARGUMENTS) to an argparse parser or argument group."""
    from .runs import yaml_mapping
    parser.add_argument('--dataset', default='elpv', help=f'one of {", ".join(DATASETS)}')
    parser.add_argument('--data-dir', help='local dataset folder (pv_faults, imagefolder, cifar10_lt copies)')
    parser.add_argument('--hub-id', help='Hugging Face Hub dataset id')
    parser.add_argument('--dataset-options', type=yaml_mapping, default={},
                        help='builder options as YAML, e.g. "{labels: binary}"')
    parser.add_argument('--split-seed', type=int, default=0, help='seed of the stratified train/validation/test split')
    parser.add_argument('--val-fraction', type=float, default=0.1, help='validation share of each class')
    parser.add_argument('--test-fraction', type=float, default=0.2, help='test share of each class (if not shipped)')


def build_dataset_from_args(args) -> DatasetDict:
    """`build_dataset` from the flags of `add_dataset_arguments` (an argparse namespace)."""
    return build_dataset(args.dataset, data_dir=args.data_dir, hub_id=args.hub_id, seed=args.split_seed,
                         val_fraction=args.val_fraction, test_fraction=args.test_fraction, **args.dataset_options)


def build_run_dataset(args) -> Tuple[DatasetDict, int]:
    """The splits a train.py run trains and scores on, from its flags (or its args.yaml); returns (dataset,
    images skipped). `build_dataset_from_args`, cut to --limit-train / --limit-eval, and user images decoded once
    by `check_images` so that an undecodable file is named now, not mid-epoch."""
    dataset = build_dataset_from_args(args)
    for split, limit in (('train', args.limit_train), ('validation', args.limit_eval), ('test', args.limit_eval)):
        if limit:  # a limit above a small dataset's split size takes the whole split
            dataset[split] = dataset[split].shuffle(seed=args.split_seed).select(range(min(limit, len(dataset[split]))))
    if args.dataset != 'elpv' or args.skip_corrupt:
        return check_images(dataset, skip_corrupt=args.skip_corrupt)
    return dataset, 0


def _check_every_class_present(dataset: DatasetDict, name: str) -> None:
    for split in ('train', 'validation'):
        counts = class_counts(dataset[split])
        empty = [label for label, count in counts.items() if count == 0]
        if empty:
            raise DatasetError(
                f'Dataset {name!r}: class(es) {", ".join(empty)} have no {split} images after splitting '
                f'({dict(counts)}). Add images of those classes, lower imbalance_ratio, or change the fractions.')


# ---------------------------------------------------------------------------------------------------------
# class statistics


def class_counts(split: datasets.Dataset) -> Dict[str, int]:
    """Return {class name: number of images} for every class of the split's ClassLabel, zeros included."""
    names = split.features['label'].names
    counts = np.bincount(np.asarray(split['label'], dtype=np.int64), minlength=len(names))
    return {name: int(count) for name, count in zip(names, counts)}


def imbalance_ratio(split: datasets.Dataset) -> float:
    """Return the largest over the smallest non-zero class count."""
    counts = [c for c in class_counts(split).values() if c > 0]
    return max(counts) / min(counts)


def weights_from_counts(counts: Sequence[int], scheme: str = 'inverse', beta: float = 0.9999) -> torch.Tensor:
    """Return per-class loss weights for class sizes `counts`.

    'inverse': w_c = N / (C * n_c) (paper Eq. 3), so the sample-weighted mean weight is 1.
    'sqrt_inverse': w_c proportional to n_c^(-1/2), scaled the same way: a milder correction.
    'effective_number': w_c proportional to (1 - beta) / (1 - beta^n_c) (Cui et al. 2019), scaled to sum to C.
    """
    counts = torch.as_tensor(list(counts), dtype=torch.float64)
    if (counts == 0).any():
        raise DatasetError('class weights: a class has no training images; its weight would be infinite.')
    if scheme == 'inverse':
        weights = counts.sum() / (len(counts) * counts)
    elif scheme == 'sqrt_inverse':
        weights = counts.rsqrt() * counts.sum() / (counts * counts.rsqrt()).sum()
    elif scheme == 'effective_number':
        weights = (1 - beta) / (1 - beta ** counts)
        weights = weights * len(counts) / weights.sum()
    else:
        raise DatasetError(f"Unknown class weight scheme {scheme!r}; use 'inverse', 'sqrt_inverse' or "
                           f"'effective_number'.")
    return weights.float()


def class_weights(split: datasets.Dataset, scheme: str = 'inverse', beta: float = 0.9999) -> torch.Tensor:
    """Return per-class loss weights computed from this (train) split; see `weights_from_counts`."""
    return weights_from_counts(class_counts(split).values(), scheme, beta)


# sampler name -> q in p(image of class c) proportional to n_c^(q - 1): 1 is plain shuffling (as the data fall)
SAMPLERS = {'none': 1.0, 'sqrt': 0.5, 'balanced': 0.0}


class ClassAwareSampler(torch.utils.data.Sampler):
    """Draw as many indices as there are images, with replacement, class c with probability n_c^q / sum n_k^q.

    q = 0 ('balanced') shows every class equally often, q = 1/2 ('sqrt') is square-root sampling, between the
    data's own frequencies (q = 1) and balance (Kang et al. 2020, "Decoupling Representation and Classifier for
    Long-Tailed Recognition"). Draws are seeded by (seed, epoch); accelerate's prepared loader calls `set_epoch`,
    so a resumed epoch draws the indices of the original run, in any number of processes.
    """

    def __init__(self, labels: Sequence[int], q: float, seed: int = 0):
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        counts = torch.bincount(labels).double()
        class_mass = counts.clamp(min=1) ** q  # total probability of each class, before normalising
        self.weights = (class_mass / counts.clamp(min=1))[labels]
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.weights)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        yield from torch.multinomial(self.weights, len(self.weights), replacement=True, generator=generator).tolist()


# ---------------------------------------------------------------------------------------------------------
# images and transforms


def decode_image(value: Any) -> PILImage.Image:
    """Return a fully loaded PIL image from a datasets.Image value (decoded or {'path', 'bytes'})."""
    if isinstance(value, PILImage.Image):
        return value
    source = value.get('path') or '<in-memory image>'
    try:
        image = PILImage.open(io.BytesIO(value['bytes']) if value.get('bytes') else value['path'])
        image.load()  # truncated files fail here, not later inside a transform
    except (OSError, ValueError, SyntaxError) as e:
        raise DatasetError(f'Cannot decode image {source}: {e}. Remove or replace the file.') from None
    return image


def find_corrupt_images(split: datasets.Dataset) -> Dict[int, str]:
    """Return {index: error message} for every image in the split that cannot be decoded."""
    raw = split.cast_column('image', Image(decode=False))
    errors = {}
    for index, value in enumerate(raw['image']):
        try:
            decode_image(value)
        except DatasetError as e:
            errors[index] = str(e)
    return errors


def error_line(error: Exception) -> str:
    """The one-line message of an error, also when a DataLoader worker raised it (torch then wraps the worker's
    traceback into the message; its last line is the original error)."""
    text = str(error).strip()
    if 'Original Traceback' not in text:
        return text
    return text.splitlines()[-1].split(': ', 1)[-1]


def check_images(dataset: DatasetDict, skip_corrupt: bool = False) -> Tuple[DatasetDict, int]:
    """Decode every image once, before training; return (dataset, images skipped).

    An undecodable image raises one DatasetError that lists them all (up to 5 by name), unless `skip_corrupt`,
    which drops them from their splits instead.
    """
    errors = {name: find_corrupt_images(split) for name, split in dataset.items()}
    found = [message for split_errors in errors.values() for message in split_errors.values()]
    if found and not skip_corrupt:
        listed = '; '.join(message.split(': ', 1)[0].removeprefix('Cannot decode image ') for message in found[:5])
        raise DatasetError(f'{len(found)} image(s) cannot be decoded ({listed}{", ..." if len(found) > 5 else ""}). '
                           f'Remove or replace them, or pass --skip-corrupt to train without them.')
    kept = DatasetDict({name: split.select([i for i in range(len(split)) if i not in errors[name]])
                        if errors[name] else split for name, split in dataset.items()})
    return kept, len(found)


# create_transform arguments that come from the model's data config, not from the augmentation options
_SET_BY_BUILD_TRANSFORMS = {'input_size', 'is_training', 'interpolation', 'mean', 'std', 'crop_pct', 'crop_mode'}


def build_transforms(model_or_data_config: Any, is_training: bool, **aug: Any) -> Callable:
    """Return a PIL -> tensor transform from timm's `create_transform` for a model or a timm data config.

    The channel count comes from the model's `in_chans` (or the config's input_size): images are converted to
    grayscale replicated to RGB for in_chans=1 and the first channel is kept after timm's pipeline, so every
    augmentation sees an ordinary RGB image. `aug` goes to `create_transform` (e.g. auto_augment='rand-m9-mstd0.5',
    hflip=0.5, vflip=0.5, scale=(0.8, 1.0), color_jitter=0.2).
    """
    from timm.data import create_transform, resolve_data_config
    from torchvision import transforms

    if isinstance(model_or_data_config, torch.nn.Module):
        config = resolve_data_config(model=model_or_data_config)
        in_chans = getattr(model_or_data_config, 'in_chans', config['input_size'][0])
    else:
        config = dict(model_or_data_config)
        in_chans = config['input_size'][0]
    timm_options = set(inspect.signature(create_transform).parameters) - _SET_BY_BUILD_TRANSFORMS
    unknown = sorted(set(aug) - timm_options - {'rot90'})
    if unknown:
        raise DatasetError(f'unknown augmentation option(s) {", ".join(unknown)}; the options are rot90 and those of '
                           f'timm\'s create_transform: {", ".join(sorted(timm_options))}.')
    rot90 = aug.pop('rot90', False) and is_training
    mean, std = tuple(config['mean']), tuple(config['std'])
    if len(mean) == 1:
        mean, std = mean * 3, std * 3
    timm_transform = create_transform(
        input_size=(3, *config['input_size'][1:]),
        is_training=is_training,
        interpolation=config.get('interpolation', 'bilinear'),
        mean=mean,
        std=std,
        crop_pct=config.get('crop_pct', 1.0),
        crop_mode=config.get('crop_mode', 'center'),
        **aug,
    )
    if in_chans not in (1, 3):
        raise DatasetError(f'build_transforms supports in_chans 1 or 3, got {in_chans}.')
    steps = [_ToGrayRGB() if in_chans == 1 else _ToRGB()]
    if rot90:
        steps.append(transforms.RandomChoice([_Rotate(k * 90) for k in range(4)]))
    steps.append(timm_transform)
    if in_chans == 1:
        steps.append(_FirstChannel())
    return transforms.Compose(steps)


class _Rotate:
    def __init__(self, degrees: int):
        self.degrees = degrees

    def __call__(self, image: PILImage.Image) -> PILImage.Image:
        return image.rotate(self.degrees) if self.degrees else image


class _ToRGB:
    def __call__(self, image: PILImage.Image) -> PILImage.Image:
        return image.convert('RGB')


class _ToGrayRGB:
    def __call__(self, image: PILImage.Image) -> PILImage.Image:
        return image.convert('L').convert('RGB')


class _FirstChannel:
    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor[:1]


def default_num_workers() -> int:
    """Return a DataLoader worker count for this machine: half the usable cores (at least 1, at most 8).

    Decoding and augmenting a cell costs far less than a train step on it, so the other half is left to the
    training threads (measured in benchmarks/data_throughput.py).
    """
    return max(1, min(len(os.sched_getaffinity(0)) // 2, 8))


def attach_transform(split: datasets.Dataset, transform: Callable) -> datasets.Dataset:
    """Return the split with an on-the-fly transform giving {'pixel_values', 'label'}; bad images name their file."""
    raw = split.cast_column('image', Image(decode=False))

    def apply(batch: Dict[str, list]) -> Dict[str, list]:
        return {
            'pixel_values': [transform(decode_image(value)) for value in batch['image']],
            'label': batch['label'],
        }

    return raw.with_transform(apply, columns=['image', 'label'])


# ---------------------------------------------------------------------------------------------------------
# CLI


def _parse_option(text: str) -> tuple:
    key, _, value = text.partition('=')
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    return key, value


def _stats(args: argparse.Namespace) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    options = dict(_parse_option(o) for o in args.option)
    dataset = build_dataset(args.name, data_dir=args.data_dir, hub_id=args.hub_id, seed=args.seed, **options)
    names = dataset['train'].features['label'].names
    counts = {split: class_counts(dataset[split]) for split in SPLITS}
    width = max(len(n) for n in names + ['class'])
    print(f'{"class":{width}s} ' + ' '.join(f'{s:>10s}' for s in SPLITS))
    for name in names:
        print(f'{name:{width}s} ' + ' '.join(f'{counts[s][name]:10d}' for s in SPLITS))
    print(f'{"total":{width}s} ' + ' '.join(f'{len(dataset[s]):10d}' for s in SPLITS))
    print(f'imbalance ratio (train, max/min): {imbalance_ratio(dataset["train"]):.2f}')

    fig, ax = plt.subplots(figsize=(max(6, len(names) * 0.9), 4))
    x = np.arange(len(names))
    for i, split in enumerate(SPLITS):
        ax.bar(x + (i - 1) * 0.27, [counts[split][n] for n in names], width=0.27, label=split)
    ax.set_xticks(x, names, rotation=30, ha='right')
    ax.set_ylabel('images')
    ax.set_title(f'{args.name}: class distribution (seed {args.seed})')
    ax.legend()
    fig.tight_layout()
    out = Path(args.out or f'{args.name}_classes.png')
    fig.savefig(out, dpi=120)
    print(f'wrote {out}')


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m timm_csba.data', description='Dataset tools.')
    commands = parser.add_subparsers(dest='command', required=True)
    stats = commands.add_parser('stats', help='per-class counts per split, imbalance ratio, bar chart PNG')
    stats.add_argument('name', choices=DATASETS, help='dataset name')
    stats.add_argument('--data-dir', help='local folder (imagefolder / parquet / save_to_disk / cifar batches)')
    stats.add_argument('--hub-id', help='Hugging Face Hub dataset id')
    stats.add_argument('--seed', type=int, default=0, help='split seed')
    stats.add_argument('--option', '-o', action='append', default=[], metavar='KEY=VALUE',
                       help='builder option, e.g. -o labels=binary -o imbalance_ratio=50')
    stats.add_argument('--out', help='PNG path (default: NAME_classes.png)')
    args = parser.parse_args(argv)
    try:
        _stats(args)
    except DatasetError as e:
        parser.exit(2, f'error: {e}\n')


if __name__ == '__main__':
    main()
