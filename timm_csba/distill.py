"""`python -m timm_csba.distill`: a teacher ensemble's class probabilities on the train split, for train.py --distill.

    python -m timm_csba.distill runs/a/best runs/b/best runs/c/best --dataset elpv --out teachers/elpv.npz
    accelerate launch train.py --config configs/elpv_hub.yaml --distill teachers/elpv.npz --distill-weight 0.5

A seed ensemble of the ELPV recipe scores higher on validation than any of its members
(studies/elpv_recipe/REPORT.md, "Seed ensembles"), but a timm user loads one model. Distillation (Hinton et al.,
2015) trains one model on the ensemble's probabilities: train.py's `--distill FILE --distill-weight w` trains on
the soft target (1 - w) * one-hot(label) + w * p_teacher(image), which for the cross-entropy is the distillation
loss at temperature 1.

The teachers see each train image once, un-augmented, through their own eval transform (a model trained at 160
px sees 160 px), averaged over --tta views. The recipe's augmentations (flips, 90-degree rotations, mild crops)
leave a cell's grade unchanged, so one target per image serves every augmented view of it. Logit offsets that a
run fitted on validation and folded into its weights (train.py --logit-offsets fit) are taken out first: the
targets must carry nothing fitted on the split that selects the student. The file stores the split's labels
beside the probabilities, so train.py refuses a file made for another dataset, split seed or --limit-train.
"""
import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from .extras import missing_extra

try:  # the [train] extra; started without it, the command says so in one line
    from .cli_args import positive_int
    from .data.builders import build_run_dataset
    from .data.errors import DatasetError
    from .dataset_flags import add_dataset_arguments
    from .distillation import save_teacher, teacher_probabilities
    from .files import OutputPathError, check_output_path
    from .inference import TTA, InferenceError
except ModuleNotFoundError as e:
    sys.exit(missing_extra(e, 'python -m timm_csba.distill'))


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m timm_csba.distill', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('models', nargs='+', help='teachers: timm names, hf-hub:ORG/NAME, local-dir:DIR or DIR')
    add_dataset_arguments(parser)
    # the student's train split exactly: the same cut and the same skipped images as its train.py run
    parser.add_argument('--limit-train', type=positive_int, help='as train.py --limit-train')
    parser.add_argument('--skip-corrupt', action='store_true', help='as train.py --skip-corrupt')
    parser.set_defaults(limit_eval=None)
    parser.add_argument('--tta', default='none', choices=TTA, help='views averaged per teacher')
    parser.add_argument('--batch-size', type=positive_int, default=64, help='images per forward pass')
    parser.add_argument('--out', required=True, help='the teacher file to write (.npz)')
    args = parser.parse_args(argv)
    try:
        check_output_path(args.out, '--out')
        split = build_run_dataset(args, splits=('train',))[0]['train']
        names = split.features['label'].names
        labels, probabilities = teacher_probabilities(args.models, split, args.tta, args.batch_size)
    except (InferenceError, DatasetError, OutputPathError, OSError) as e:
        sys.exit(f'error: {e}')
    save_teacher(Path(args.out), labels, probabilities, args.models)
    accuracy = (probabilities.argmax(1) == labels).float().mean().item()
    print(f'wrote {args.out}: {len(labels)} train images x {len(names)} classes from {len(args.models)} '
          f'teacher(s); their mean train accuracy {accuracy:.3f}')


if __name__ == '__main__':
    main()
