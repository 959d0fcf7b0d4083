"""Dataset builders: every dataset as an HF `datasets.DatasetDict` with splits `train`, `validation` and `test`,
features `image` (`datasets.Image`) and `label` (`ClassLabel` with readable names).

A dataset that ships its own test split keeps it, and validation is always carved from the train pool; the splits
made here are stratified and seeded (splits.py).
"""
import functools
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
from .idx import read_idx
from .imbalance import class_counts
from .long_tail import long_tailed
from .splits import SPLITS, check_fractions, split_off

ELPV_PROBABILITY_NAMES = ('functional', 'possibly_defective', 'likely_defective', 'defective')
ELPV_CELL_TYPES = ('mono', 'poly')
PV_FAULTS_CLASSES = ('Bird-drop', 'Clean', 'Dusty', 'Electrical-damage', 'Physical-Damage', 'Snow-Covered')
PV_FAULTS_URL = 'https://www.kaggle.com/datasets/pythonafroz/solar-panel-images'
CIFAR10_HUB_ID = 'uoft-cs/cifar10'
CIFAR10_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck')
FASHION_MNIST_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag',
                         'Ankle boot')
FASHION_MNIST_DEBIAN = Path('/usr/share/datasets/fashion-mnist')  # apt-get install dataset-fashion-mnist
FASHION_MNIST_FILES = {'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
                       'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')}
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


def _pool_splits(pool: datasets.Dataset, test: datasets.Dataset, seed: int, val_fraction: float,
                 imbalance_ratio: Optional[float], source: str) -> DatasetDict:
    """A shipped balanced train pool and test split as train / validation / test: validation carved from the pool,
    after the pool is cut to the long-tail profile when `imbalance_ratio` is given (long_tail.py)."""
    if imbalance_ratio is not None:
        return long_tailed(pool, test, imbalance_ratio, seed, val_fraction, source)
    splits = split_off(pool, {'validation': val_fraction}, seed)
    return DatasetDict(train=splits['train'], validation=splits['validation'], test=test)


def _build_cifar10(
        *,
        hub_id: Optional[str],
        data_dir: Optional[str],
        seed: int,
        val_fraction: float,
        test_fraction: float,
        imbalance_ratio: Optional[float] = None,
        image_column: str = 'img',
        label_column: str = 'label',
) -> DatasetDict:
    """CIFAR-10 (50,000 train images, 5,000 per class; the balanced 10,000-image test split kept as shipped,
    test_fraction unused), optionally long-tailed (long_tail.py)."""
    if data_dir is not None and (Path(data_dir) / 'data_batch_1').exists():
        raw = _load_cifar_batches(Path(data_dir))
    elif data_dir is not None:
        raw = _load_raw(data_dir, None)
    else:
        raw = _load_raw(None, hub_id or CIFAR10_HUB_ID)
    source = str(data_dir or hub_id or CIFAR10_HUB_ID)
    raw = _standardise_columns(raw, image_column, label_column, source)
    if 'test' not in raw:
        raise DatasetError(f'CIFAR-10 needs the official test split; {source} has only {", ".join(raw)}')
    return _pool_splits(raw['train'], raw['test'], seed, val_fraction, imbalance_ratio, source)


# CIFAR-10-LT: `cifar10` with its train split cut to the long-tail profile, at IR 100 unless given
_build_cifar10_lt = functools.partial(_build_cifar10, imbalance_ratio=100.0)


# ---------------------------------------------------------------------------------------------------------
# Fashion-MNIST (Debian's dataset-fashion-mnist, or torchvision's FashionMNIST/raw)


def _fashion_mnist_folder(data_dir: Optional[str]) -> Path:
    """The folder of the four IDX files: data_dir itself or its FashionMNIST/raw (torchvision's layout), else the
    Debian package's folder."""
    candidates = [Path(data_dir), Path(data_dir) / 'FashionMNIST' / 'raw'] if data_dir else [FASHION_MNIST_DEBIAN]
    first = FASHION_MNIST_FILES['train'][0]
    for folder in candidates:
        if any((folder / f'{first}{suffix}').is_file() for suffix in ('', '.gz')):
            return folder
    where = ' or '.join(str(c) for c in candidates)
    raise DatasetError(f'no Fashion-MNIST IDX files ({first}[.gz], ...) in {where}: install them with apt-get install '
                       f'dataset-fashion-mnist (into {FASHION_MNIST_DEBIAN}), or pass --data-dir <folder of the '
                       f'IDX files or torchvision\'s root>')


def _idx_path(folder: Path, stem: str) -> Path:
    for path in (folder / stem, folder / f'{stem}.gz'):
        if path.is_file():
            return path
    raise DatasetError(f'{folder} has no {stem} or {stem}.gz: Fashion-MNIST needs all four IDX files '
                       f'({", ".join(f for pair in FASHION_MNIST_FILES.values() for f in pair)})')


def _read_fashion_mnist_split(images_path: Path, labels_path: Path) -> Tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path, dims=3), read_idx(labels_path, dims=1)
    if len(images) != len(labels) or labels.max(initial=0) >= len(FASHION_MNIST_CLASSES):
        raise DatasetError(f'{images_path} and {labels_path} do not belong together ({len(images)} images, '
                           f'{len(labels)} labels up to {labels.max(initial=0)}); fetch the four files again')
    return images, labels


def _fashion_mnist_rows(images_path: str, labels_path: str, stamp: str) -> Iterator[Dict[str, Any]]:
    # `stamp` (the files' sizes and mtimes) only keys the HF cache, so that a replaced file is read again; a string,
    # as datasets shards a generator over every list in gen_kwargs
    images, labels = _read_fashion_mnist_split(Path(images_path), Path(labels_path))
    for image, label in zip(images, labels):
        yield {'image': image, 'label': int(label)}


def _build_fashion_mnist(
        *,
        hub_id: Optional[str],
        data_dir: Optional[str],
        seed: int,
        val_fraction: float,
        test_fraction: float,
        imbalance_ratio: Optional[float] = None,
) -> DatasetDict:
    """Fashion-MNIST from its IDX files (60,000 train images, 6,000 per class; the balanced 10,000-image test split
    kept as shipped, test_fraction unused), decoded once into the HF datasets cache; optionally long-tailed."""
    if hub_id is not None:
        raise DatasetError('fashion_mnist reads its IDX files from --data-dir (or the Debian package); for a Hub copy '
                           'use the \'hub\' dataset')
    folder = _fashion_mnist_folder(data_dir)
    features = Features({'image': Image(), 'label': ClassLabel(names=list(FASHION_MNIST_CLASSES))})
    splits = {}
    for split, stems in FASHION_MNIST_FILES.items():
        paths = [_idx_path(folder, stem) for stem in stems]
        _read_fashion_mnist_split(*paths)  # every bad file named here, in one line, not inside the cache writer
        stamp = ' '.join(f'{p.stat().st_size}:{p.stat().st_mtime_ns}' for p in paths)
        splits[split] = datasets.Dataset.from_generator(
            _fashion_mnist_rows, features=features, split=datasets.Split(split),
            gen_kwargs=dict(images_path=str(paths[0]), labels_path=str(paths[1]), stamp=stamp))
    return _pool_splits(splits['train'], splits['test'], seed, val_fraction, imbalance_ratio, str(folder))


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
    'cifar10': _build_cifar10,
    'cifar10_lt': _build_cifar10_lt,
    'fashion_mnist': _build_fashion_mnist,
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
    # every dataset takes imbalance_ratio: the ones without a pool of their own get it in build_dataset
    accepted = set(inspect.signature(_BUILDERS[name]).parameters) - {'seed', 'val_fraction', 'test_fraction'}
    accepted.add('imbalance_ratio')
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
    parameters = inspect.signature(builder).parameters
    imbalance_ratio = None if 'imbalance_ratio' in parameters else options.pop('imbalance_ratio', None)
    kwargs = dict(seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, **options)
    if 'data_dir' in parameters:
        kwargs.update(data_dir=data_dir, hub_id=hub_id)
    dataset = builder(**kwargs)
    if imbalance_ratio is not None:
        dataset = _long_tailed_after_split(dataset, imbalance_ratio, seed, val_fraction, name)
    _check_every_class_present(dataset, name)
    return dataset


def _long_tailed_after_split(dataset: DatasetDict, imbalance_ratio: float, seed: int, val_fraction: float,
                             name: str) -> DatasetDict:
    """The long-tail option of a dataset whose builder carves validation itself: its train and validation splits
    (the stratified halves of its balanced train pool) joined into that pool again, then cut to the profile."""
    pool = datasets.concatenate_datasets([dataset['train'], dataset['validation']])
    return long_tailed(pool, dataset['test'], imbalance_ratio, seed, val_fraction, name)


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
