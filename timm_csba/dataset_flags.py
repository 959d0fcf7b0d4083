"""The flags that name a dataset and its fixed split, shared by train.py, evaluate, diagnose and distill, so that
a run's split is rebuilt exactly from its args.yaml (`timm_csba.data.build_run_dataset` reads them back)."""
from .cli_args import yaml_mapping
from .data.builders import DATASETS

__all__ = ['add_dataset_arguments']


def add_dataset_arguments(parser) -> None:
    """Add the dataset and split flags (DATASET_ARGUMENTS) to an argparse parser or argument group."""
    parser.add_argument('--dataset', default='elpv', help=f'one of {", ".join(DATASETS)}')
    parser.add_argument('--data-dir', help='local dataset folder (pv_faults, imagefolder, cifar10 and fashion_mnist '
                        'copies)')
    parser.add_argument('--hub-id', help='Hugging Face Hub dataset id')
    parser.add_argument('--dataset-options', type=yaml_mapping, default={},
                        help='builder options as YAML, e.g. "{labels: binary}"')
    parser.add_argument('--split-seed', type=int, default=0, help='seed of the stratified train/validation/test split')
    parser.add_argument('--val-fraction', type=float, default=0.1, help='validation share of each class')
    parser.add_argument('--test-fraction', type=float, default=0.2, help='test share of each class (if not shipped)')
