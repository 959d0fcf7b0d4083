"""Class-imbalanced image-classification datasets as HF `datasets`, with timm transforms and class weights.

Every builder returns a `datasets.DatasetDict` with splits `train`, `validation` and `test`, features `image`
(`datasets.Image`) and `label` (`ClassLabel` with readable names). Splits made here are stratified by label and
depend only on the seed, so the same seed gives the same index lists on any machine.

    elpv         ELPV electroluminescence solar cells, from the `elpv-dataset` package (embedded, default)
    pv_faults    Kaggle "Solar Panel Clean and Faulty Images" (6 classes), local imagefolder or Hub id
    cifar10      CIFAR-10 from the Hub (uoft-cs/cifar10) or a local copy
    cifar10_lt   cifar10 with imbalance_ratio=100: n_i = floor(5000 * IR^(-i/9)) (the LDAM-DRW protocol)
    fashion_mnist  Fashion-MNIST from its IDX files (Debian's dataset-fashion-mnist, or torchvision's raw folder)
    fractals     formula-driven: random IFS fractals, one category per system (no real image; fractals.py)
    hub          any Hub dataset id, given its image and label columns
    imagefolder  any local folder: imagefolder layout, parquet files, or a `save_to_disk` copy

Any of them with a balanced train split takes `imbalance_ratio` (long_tail.py): the train pool cut to the long-tail
profile before validation is carved from it, the test split untouched.

    builders.py    the datasets above, build_dataset, and a run's dataset rebuilt from its recorded settings
    splits.py      deterministic stratified splits
    long_tail.py   the long-tail profile of any balanced train pool (imbalance_ratio)
    idx.py         IDX files (MNIST, Fashion-MNIST), every way one can be wrong named
    imbalance.py   class counts, loss weights, class-aware sampling
    images.py      decoding that names a bad file                                   (core install)
    transforms.py  timm transforms in 1 or 3 channels                               (core install)
    hf_splits.py   a transform applied to an HF split on the fly, every image decoded once before training

`python -m timm_csba.data stats NAME [options]` prints per-class counts per split and writes a bar chart.

The names below load on first use (PEP 562): `decode_image` and `build_transforms` need only the core install
(torch, timm, pillow), the rest the `[train]` extra (`datasets`), so predicting with a published model never
imports `datasets`.
"""
from ..lazy import lazy_exports

# public name -> the module of this package that defines it
_EXPORTS = {
    'DATASETS': '.builders', 'DATASET_ARGUMENTS': '.builders', 'build_dataset': '.builders',
    'build_dataset_from_args': '.builders', 'build_run_dataset': '.builders', 'long_tail_counts': '.long_tail',
    'CIFAR10_CLASSES': '.builders', 'FASHION_MNIST_CLASSES': '.builders', 'ELPV_PROBABILITY_NAMES': '.builders',
    'PV_FAULTS_CLASSES': '.builders',
    'DatasetError': '.errors', 'error_line': '.errors',
    'decode_image': '.images',
    'build_transforms': '.transforms', 'default_num_workers': '.transforms',
    'attach_transform': '.hf_splits', 'check_images': '.hf_splits', 'find_corrupt_images': '.hf_splits',
    'SAMPLERS': '.imbalance', 'ClassAwareSampler': '.imbalance', 'class_counts': '.imbalance',
    'class_weights': '.imbalance', 'imbalance_ratio': '.imbalance', 'weights_from_counts': '.imbalance',
    'SPLITS': '.splits', 'stratified_split': '.splits',
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
