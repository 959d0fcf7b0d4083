"""Dataset builders: every dataset as an HF `datasets.DatasetDict` with splits `train`, `validation` and `test`,
features `image` (`datasets.Image`) and `label` (`ClassLabel` with readable names).

A dataset that ships its own test split keeps it, and validation is always carved from the train pool; the splits
made here are stratified and seeded (splits.py).
"""
import inspect
import pickle
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

import datasets
import numpy as np
from datasets import ClassLabel, DatasetDict, Features, Image, Value

from .errors import DatasetError
from .fractals import check_fractal_options, fractal_images
from .hf_splits import check_images
from .imbalance import class_counts
from .splits import SPLITS, check_fractions, split_off

ELPV_PROBABILITY_NAMES = ('functional', 'possibly_defective', 'likely_defective', 'defective')
ELPV_CELL_TYPES = ('mono', 'poly')
PV_FAULTS_CLASSES = ('Bird-drop', 'Clean', 'Dusty', 'Electrical-damage', 'Physical-Damage', 'Snow-Covered')
PV_FAULTS_URL = 'https://www.kaggle.com/datasets/pythonafroz/solar-panel-images'
CIFAR10_HUB_ID = 'uoft-cs/cifar10'
CIFAR10_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck')
_SPLIT_ALIASES = {'valid': 'validation', 'val': 'validation', 'dev': 'validation', 'eval': 'validation'}


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
    return DatasetDict(split_off(dataset, {'validation': val_fraction, 'test': test_fraction}, seed))


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
        splits.update(split_off(dataset['train'], fractions, seed))
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
    long_tail = split_off(pool.select(keep), {'validation': val_fraction}, seed)
    return DatasetDict(train=long_tail['train'], validation=long_tail['validation'], test=raw['test'])


# ---------------------------------------------------------------------------------------------------------
# formula-driven fractals (rendered once, then read from the HF datasets cache)


def _fractal_rows(seed: int, categories: int, instances: int, size: int) -> Iterator[Dict[str, Any]]:
    for image, category in fractal_images(seed, categories, instances, size):
        yield {'image': image, 'label': category}


def _build_fractals(
        *,
        seed: int,
        val_fraction: float,
        test_fraction: float,
        categories: int = 1000,
        instances: int = 50,
        size: int = 64,
        render_seed: int = 0,
) -> DatasetDict:
    """`categories` random IFS fractals x `instances` each at `size` px (fractals.py), rendered once into the HF
    datasets cache (keyed by the options) and split by `seed`; `render_seed` draws the systems."""
    check_fractal_options(categories, instances, size)
    features = Features({'image': Image(), 'label': ClassLabel(names=[f'ifs_{c:04d}' for c in range(categories)])})
    dataset = datasets.Dataset.from_generator(
        _fractal_rows, features=features,
        gen_kwargs=dict(seed=render_seed, categories=categories, instances=instances, size=size))
    return DatasetDict(split_off(dataset, {'validation': val_fraction, 'test': test_fraction}, seed))


# ---------------------------------------------------------------------------------------------------------
# entry point


_BUILDERS: Dict[str, Callable[..., DatasetDict]] = {
    'elpv': _build_elpv,
    'pv_faults': _build_pv_faults,
    'cifar10_lt': _build_cifar10_lt,
    'fractals': _build_fractals,
    'hub': _generic_builder('hub'),
    'imagefolder': _generic_builder('imagefolder'),
}
DATASETS = tuple(_BUILDERS)


def check_dataset_request(name: str, data_dir: Optional[str], hub_id: Optional[str], val_fraction: float,
                          test_fraction: float, options: Dict[str, Any]) -> None:
    """Raise DatasetError for a request `build_dataset` cannot serve, before anything is read: an unknown dataset
    or option, fractions that leave no train split, or a source given to an embedded dataset."""
    if name not in _BUILDERS:
        raise DatasetError(f'Unknown dataset {name!r}; known datasets: {", ".join(DATASETS)}.')
    accepted = set(inspect.signature(_BUILDERS[name]).parameters) - {'seed', 'val_fraction', 'test_fraction'}
    unknown = set(options) - accepted
    if unknown:
        valid = sorted(accepted - {'data_dir', 'hub_id'})
        raise DatasetError(f'Unknown option(s) {", ".join(sorted(unknown))} for dataset {name!r}; '
                           f'its options are: {", ".join(valid) or "none"}.')
    check_fractions(val_fraction, test_fraction)
    if 'data_dir' not in accepted and (data_dir is not None or hub_id is not None):
        raise DatasetError(f'Dataset {name!r} is embedded; it takes no data_dir or hub_id.')


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
    check_dataset_request(name, data_dir, hub_id, val_fraction, test_fraction, options)
    builder = _BUILDERS[name]
    kwargs = dict(seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, **options)
    if 'data_dir' in inspect.signature(builder).parameters:
        kwargs.update(data_dir=data_dir, hub_id=hub_id)
    dataset = builder(**kwargs)
    _check_every_class_present(dataset, name)
    return dataset


# the settings that name a dataset and its fixed split (timm_csba.cli_args.add_dataset_arguments makes them flags);
# train.py, evaluate and diagnose share them, so that a run's split is rebuilt exactly from its args.yaml
DATASET_ARGUMENTS = ('dataset', 'data_dir', 'hub_id', 'dataset_options', 'split_seed', 'val_fraction', 'test_fraction')


def build_dataset_from_args(args) -> DatasetDict:
    """`build_dataset` from the DATASET_ARGUMENTS attributes of `args` (parsed flags, or a run's args.yaml)."""
    return build_dataset(args.dataset, data_dir=args.data_dir, hub_id=args.hub_id, seed=args.split_seed,
                         val_fraction=args.val_fraction, test_fraction=args.test_fraction, **args.dataset_options)


def build_run_dataset(args, splits: Sequence[str] = SPLITS) -> Tuple[DatasetDict, int]:
    """The splits a train.py run trains and scores on, from its flags (or its args.yaml); returns (dataset,
    images skipped). `build_dataset_from_args`, cut to --limit-train / --limit-eval, and user images decoded once
    by `check_images` so that an undecodable file is named now, not mid-epoch. `splits` keeps only those (e.g.
    the test split to rescore a run), so that the others are not decoded."""
    dataset = build_dataset_from_args(args)
    dataset = DatasetDict({name: dataset[name] for name in splits})
    for split, limit in (('train', args.limit_train), ('validation', args.limit_eval), ('test', args.limit_eval)):
        if limit and split in dataset:  # a limit above a small dataset's split size takes the whole split
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
