"""Class-imbalanced image-classification datasets as HF `datasets`, with timm transforms and class weights.

Every builder returns a `datasets.DatasetDict` with splits `train`, `validation` and `test`, features `image`
(`datasets.Image`) and `label` (`ClassLabel` with readable names). Splits made here are stratified by label and
depend only on the seed, so the same seed gives the same index lists on any machine.

    elpv         ELPV electroluminescence solar cells, from the `elpv-dataset` package (embedded, default)
    pv_faults    Kaggle "Solar Panel Clean and Faulty Images" (6 classes), local imagefolder or Hub id
    cifar10_lt   CIFAR-10 subsampled to a long tail, n_i = floor(5000 * IR^(-i/9)) (LDAM-DRW protocol)
    hub          any Hub dataset id, given its image and label columns
    imagefolder  any local folder: imagefolder layout, parquet files, or a `save_to_disk` copy

    builders.py    the datasets above, build_dataset and the flags that name a run's dataset and split
    splits.py      deterministic stratified splits
    imbalance.py   class counts, loss weights, class-aware sampling
    images.py      decoding that names a bad file, the check of every image before training
    transforms.py  timm transforms in 1 or 3 channels, applied on the fly to an HF split

`python -m timm_csba.data stats NAME [options]` prints per-class counts per split and writes a bar chart.
"""
from .builders import (CIFAR10_CLASSES, DATASET_ARGUMENTS, DATASETS, ELPV_PROBABILITY_NAMES, PV_FAULTS_CLASSES,
                       add_dataset_arguments, build_dataset, build_dataset_from_args, build_run_dataset,
                       long_tail_counts)
from .errors import DatasetError, error_line
from .images import check_images, decode_image, find_corrupt_images
from .imbalance import SAMPLERS, ClassAwareSampler, class_counts, class_weights, imbalance_ratio, weights_from_counts
from .splits import SPLITS, stratified_split
from .transforms import attach_transform, build_transforms, default_num_workers

__all__ = [
    'DATASETS', 'SPLITS', 'DatasetError', 'build_dataset', 'stratified_split', 'class_counts', 'class_weights',
    'imbalance_ratio', 'build_transforms', 'attach_transform', 'decode_image', 'find_corrupt_images', 'check_images',
    'error_line', 'default_num_workers', 'long_tail_counts', 'weights_from_counts', 'SAMPLERS', 'ClassAwareSampler',
    'DATASET_ARGUMENTS', 'add_dataset_arguments', 'build_dataset_from_args', 'build_run_dataset',
    'CIFAR10_CLASSES', 'ELPV_PROBABILITY_NAMES', 'PV_FAULTS_CLASSES',
]
