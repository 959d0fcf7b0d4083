#!/usr/bin/env python
"""Train a timm model (any csba_* or any other) on a timm_csba dataset with Accelerate.

    accelerate launch train.py --config configs/elpv.yaml [--flag value ...]
    accelerate launch train.py --resume runs/elpv            # continue a killed run
    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 train.py --config configs/smoke.yaml

Flags override the YAML config; the resolved config is saved as RUN/args.yaml. The number of processes comes
from `accelerate launch`; precision is --mixed-precision (auto: bf16 where the CPU or GPU runs it natively, or
what `accelerate launch --mixed_precision` asked for), threads --threads (auto: the cores shared among the local
processes, whatever OMP_NUM_THREADS the launcher set). The run directory holds
args.yaml, provenance.json (command, git commit, versions), metrics.jsonl, val_predictions.npz (every epoch's
validation logits), checkpoints/ (accelerate states: the last --keep-last plus the best), best/ (timm Hub
format), test_metrics.json and confusion_matrix.png.

The script reads top to bottom: the flags; which option applies with which (`check_args`, run on the resolved
config before anything is built, so that bad input costs a second, not a decoded dataset); then `main`:
Accelerator, data, model, loss and optimizer, the epoch loop, and the test of the best checkpoint.
"""
import argparse
import difflib
import json
import math
import os
import sys
import time
from pathlib import Path

import timm
import torch
from timm.data import Mixup, resolve_data_config
from timm.optim import create_optimizer_v2, get_optimizer_info, list_optimizers
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3

import timm_csba  # noqa: F401  (registers csba_* in timm)
from timm_csba.extras import missing_extra

try:  # the [train] extra; started without it, train.py says so in one line
    from accelerate import Accelerator, PartialState
    from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, parse_flag_from_env, set_seed
    from tqdm.auto import tqdm

    from timm_csba.calibration import cross_fitted_predictions, fit_logit_offsets, fold_logit_offsets
    from timm_csba.cli_args import (non_negative_float, non_negative_int, positive_float, positive_int, probability,
                                    yaml_mapping)
    from timm_csba.data.builders import build_run_dataset, check_dataset_request
    from timm_csba.data.errors import DatasetError
    from timm_csba.data.hf_splits import attach_transform
    from timm_csba.data.imbalance import SAMPLERS, ClassAwareSampler, class_counts
    from timm_csba.data.transforms import build_transforms, check_augment_options, default_num_workers
    from timm_csba.dataset_flags import add_dataset_arguments
    from timm_csba.diagnostics import analyze
    from timm_csba.distillation import DistillError, distill_targets, load_teacher, read_teacher
    from timm_csba.files import atomic_path, write_json, write_text
    from timm_csba.fused_norm_act import FusedNormActError, use_fused_norm_act
    from timm_csba.hub import save_pretrained
    from timm_csba.losses import EARLIER_DEFAULTS, LOSS_OPTIONS, LOSSES, SOFT_TARGET_LOSSES, create_loss_from_config
    from timm_csba.metrics import (METRICS, classification_metrics, save_confusion_matrix, save_epoch_logits,
                                   save_predictions)
    from timm_csba.models import use_cosine_classifier
    from timm_csba.pretrained import load_pretrained, model_architecture, pretrained_num_classes
    from timm_csba.runs import (RunError, TrainState, check_run_dir, latest_checkpoint, prepare_run_dir, provenance,
                                resolve_config, save_checkpoint, saved_epochs)
    from timm_csba.runtime import (PRECISIONS, PrecisionError, check_compile_backend, compile_in_place, compiled_graphs,
                                   cpu_threads, hold_freed_memory, resolve_mixed_precision)
    from timm_csba.sam import SharpnessAware, check_rho
    from timm_csba.tensor_input import BatchAugment, cached_pixels, collate_pixels, normalize, tensor_augment_problem
except ModuleNotFoundError as e:
    sys.exit(missing_extra(e, 'train.py'))


# -------------------------------------------------------------------------------------------------------- flags
def build_parser() -> argparse.ArgumentParser:
    """train.py's flags with their defaults, before any preset."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', help='YAML preset (default: configs/elpv.yaml, or the resumed run\'s args.yaml)')
    parser.add_argument('--output-dir', help='run directory (default: runs/<config name>)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing run in --output-dir')
    parser.add_argument('--resume', help='run directory or checkpoint folder to continue from')
    g = parser.add_argument_group('data')
    add_dataset_arguments(g)
    g.add_argument('--limit-train', type=positive_int,
                   help='use only this many (shuffled) train images, for smoke tests')
    g.add_argument('--limit-eval', type=positive_int,
                   help='use only this many validation and test images, for smoke tests')
    g.add_argument('--img-size', type=positive_int, help='square training size (default: the model\'s pretrained cfg)')
    g.add_argument('--mean', type=float, nargs='+', help='normalisation mean (default: the model\'s cfg)')
    g.add_argument('--std', type=positive_float, nargs='+', help='normalisation std (default: the model\'s cfg)')
    g.add_argument('--augment', type=yaml_mapping, default={}, help='timm create_transform train options as YAML')
    g.add_argument('--mixup', type=non_negative_float, default=0.0,
                   help='mixup alpha (timm Mixup, on whole batches; 0: off)')
    g.add_argument('--cutmix', type=non_negative_float, default=0.0, help='cutmix alpha (timm Mixup; 0: off)')
    g.add_argument('--mixup-prob', type=probability, default=1.0, help='probability that a batch is mixed')
    g.add_argument('--mixup-switch-prob', type=probability, default=0.5,
                   help='probability of cutmix rather than mixup when both are on')
    g.add_argument('--distill', metavar='FILE', help='also learn from a teacher ensemble: its class probabilities of '
                   'each train image, an .npz of python -m timm_csba.distill')
    g.add_argument('--distill-weight', type=probability, default=0.5,
                   help='the teacher\'s share of each soft target (with --distill): (1 - w) one-hot + w teacher')
    g.add_argument('--input-pipeline', default='auto', choices=('auto', 'tensor', 'pil'),
                   help='tensor: images decoded once into a uint8 cache and augmented as batches where the model '
                        'runs (no DataLoader worker); pil: timm transforms per image in DataLoader workers; auto: '
                        'tensor for elpv when the augmentation allows it')
    g.add_argument('--num-workers', type=non_negative_int,
                   help='DataLoader workers per process, pil pipeline (default: half the cores)')
    g.add_argument('--skip-corrupt', action='store_true', help='train without the images that cannot be decoded '
                   '(found by a first pass over every image, which runs for all datasets but the embedded elpv)')
    g.add_argument('--sampler', default='none', choices=tuple(SAMPLERS),
                   help='training images drawn with replacement, class c with probability ~ n_c^q: balanced q=0, sqrt '
                        'q=1/2; none: plain shuffling')
    g = parser.add_argument_group('model')
    g.add_argument('--model', default='csba_squeeze', help='timm model name (csba_* or any timm model, local-dir:...)')
    g.add_argument('--pretrained', action='store_true', help='start from the model\'s pretrained weights')
    g.add_argument('--reset-classifier', action='store_true', help='allow pretrained weights with another class count')
    g.add_argument('--in-chans', type=positive_int, default=3, help='input channels (1 for grayscale)')
    g.add_argument('--drop-rate', type=probability, help='classifier dropout (default: the model\'s)')
    g.add_argument('--cosine-scale', type=positive_float,
                   help='a normalised classifier: logits = S * cos(class weight, features) (Cao et al.\'s LDAM layer, '
                        'S = 30; the csba heads average their branches\' cosines); LDAM\'s margins then count in '
                        'cosine units')
    g.add_argument('--channels-last', action='store_true', help='channels_last memory format (faster on CPU)')
    g.add_argument('--fused-norm-act', action='store_true',
                   help='train BatchNorm + ReLU-family layers through one fused CPU kernel (timm_csba.fused_norm_act: '
                        'compiled on first use; needs --channels-last). Same weights and checkpoint keys; on a GPU, '
                        'under --torchcompile or where the kernel cannot be built the layers run as PyTorch\'s, and '
                        'the run\'s first line says so')
    g.add_argument('--torchcompile', nargs='?', const='inductor', help='torch.compile the model with this backend '
                   '(bare flag: inductor), in place: checkpoint keys stay those of the plain model')
    g.add_argument('--torchcompile-mode', choices=('default', 'reduce-overhead', 'max-autotune',
                                                   'max-autotune-no-cudagraphs'), help='torch.compile mode')
    g.add_argument('--model-ema', action='store_true', help='keep an exponential moving average of the weights (timm '
                   'ModelEmaV3) and validate, select and publish it instead of the raw weights')
    g.add_argument('--model-ema-decay', type=probability, default=0.998,
                   help='EMA decay per optimizer update (warmed up)')
    g = parser.add_argument_group('machine')
    g.add_argument('--mixed-precision', default='auto', choices=PRECISIONS,
                   help='autocast dtype; auto: bf16 where the device runs it natively, else fp32 on CPU and fp16 on '
                        'GPU, or what accelerate launch --mixed_precision asked for')
    g.add_argument('--threads', type=non_negative_int, default=0,
                   help='CPU threads per process (0: the cores / local processes)')
    g = parser.add_argument_group('optimisation')
    g.add_argument('--epochs', type=positive_int, default=30, help='maximum epochs')
    g.add_argument('--batch-size', type=positive_int, default=32, help='batch size per process')
    g.add_argument('--grad-accum-steps', type=positive_int, default=1, help='batches per optimizer step')
    g.add_argument('--opt', default='adam', choices=list_optimizers(), metavar='OPT',
                   help='timm optimizer: adam, adamw, sgd, ... (timm.optim.list_optimizers())')
    g.add_argument('--lr', type=non_negative_float, default=1e-3, help='peak learning rate')
    g.add_argument('--weight-decay', type=non_negative_float, default=0.0,
                   help='weight decay (not on norms and biases)')
    g.add_argument('--momentum', type=non_negative_float, default=0.9, help='SGD momentum')
    g.add_argument('--sched', default='cosine', choices=('cosine', 'step', 'multistep'), help='timm scheduler')
    g.add_argument('--decay-epochs', type=positive_float, default=30, help='step scheduler: epochs between decays')
    g.add_argument('--decay-milestones', type=positive_int, nargs='+', default=[90, 180],
                   help='multistep: decay epochs')
    g.add_argument('--decay-rate', type=positive_float, default=0.1, help='step / multistep: decay factor')
    g.add_argument('--warmup-epochs', type=non_negative_float, default=0, help='linear warm-up epochs')
    g.add_argument('--min-lr', type=non_negative_float, default=0.0, help='cosine floor learning rate')
    g.add_argument('--clip-grad', type=positive_float, help='clip the gradient norm to this value')
    g.add_argument('--sam-rho', type=float, default=0.0, help='sharpness-aware minimisation: each update uses the '
                   'gradient at the steepest point within this L2 radius (a second forward and backward pass; 0: off)')
    g.add_argument('--seed', type=int, default=42, help='training seed (init, data order, augmentation)')
    g = parser.add_argument_group('loss')
    g.add_argument('--loss', default='ce', choices=LOSSES, help='training loss')
    g.add_argument('--class-weights', default='inverse',
                   choices=('inverse', 'sqrt_inverse', 'effective_number', 'none'),
                   help='loss weights per class from the train counts')
    g.add_argument('--label-smoothing', type=probability, default=0.0, help='label smoothing (ce)')
    g.add_argument('--focal-gamma', type=non_negative_float, default=2.0, help='focal loss gamma')
    g.add_argument('--la-tau', type=non_negative_float, default=1.0,
                   help='logit adjustment tau (1 = balanced softmax); the prior is the sampler\'s (--sampler), not '
                        'the split\'s')
    g.add_argument('--ldam-max-margin', type=positive_float, default=0.5, help='LDAM largest margin')
    g.add_argument('--ldam-scale', type=positive_float, default=1.0,
                   help='LDAM logit scale: 1 for raw logits; Cao et al.\'s 30 assumes a normalised (cosine) classifier')
    g.add_argument('--drw-epoch', type=non_negative_int,
                   help='LDAM: deferred re-weighting starts after this many epochs, counted as --decay-milestones '
                        'are (160 with a milestone at 160: re-weighting starts with the decayed learning rate)')
    g.add_argument('--ordinal-scale', type=positive_float, default=10.0,
                   help='ordinal loss: target mass exp(-scale * grade distance^2), grades evenly spaced on [0, 1]; '
                        'larger is closer to CE')
    g = parser.add_argument_group('selection and logging')
    g.add_argument('--monitor', default='macro_f1', choices=METRICS,
                   help='validation metric for best checkpoint / early stop')
    g.add_argument('--patience', type=non_negative_int, default=10,
                   help='epochs without improvement before stopping (0: never)')
    g.add_argument('--min-delta', type=non_negative_float, default=0.0, help='smallest improvement that counts')
    g.add_argument('--keep-last', type=non_negative_int, default=2, help='epoch checkpoints kept besides the best')
    g.add_argument('--logit-offsets', default='none', choices=('none', 'fit'),
                   help='fit: after training, per-class logit offsets fitted on validation for macro-F1 are folded '
                        'into best/ (its config.json records them), before the test')
    g.add_argument('--report-to', default='none', choices=('tensorboard', 'wandb', 'all', 'none'), help='trackers')
    g.add_argument('--diagnose-every', type=non_negative_int, default=0,
                   help='gradient-conflict summaries every N epochs (0: never)')
    g.add_argument('--diagnose-batches', type=positive_int, default=8,
                   help='single-class train batches per process for them')
    return parser


# ---------------------------------------------------------------------------------------- which option applies
def input_pipeline(args: argparse.Namespace) -> str:
    """The input pipeline a run uses: --input-pipeline, with auto resolved to tensor for ELPV when the augmentation
    allows it (the tensor pipeline does flips, rotations, crops and jitter on whole batches) and no workers are
    asked for, else pil."""
    if args.input_pipeline != 'auto':
        return args.input_pipeline
    tensor_ok = args.dataset == 'elpv' and not tensor_augment_problem(args.augment) and not args.num_workers
    return 'tensor' if tensor_ok else 'pil'


def _flag(option):
    return '--' + option.replace('_', '-')


def _applies_with(requirement):
    return lambda args, option: f'{_flag(option)} applies with {requirement}; drop it or add {requirement}'


def _schedule(*scheds):
    return (lambda args: args.sched in scheds,
            lambda args, option: f'the {args.sched} schedule ignores {_flag(option)}; drop it or choose the --sched '
                                 f'that uses it ({" or ".join(scheds)})')


def _loss(losses):
    return (lambda args: args.loss in losses,
            lambda args, option: f'the {args.loss} loss ignores {option}; drop {_flag(option)} or choose the loss '
                                 f'that uses it ({", ".join(losses)}).')


def _with_mixup(args):
    return bool(args.mixup or args.cutmix)


# An option the rest of the config would ignore is an error, never a silent no-op. option -> (does it apply to
# these args?, the one line that says what it applies with). An option at the parser's own default is never
# refused, so changing a default cannot make a preset wrong.
APPLIES_WITH = {
    'decay_epochs': _schedule('step'),
    'decay_milestones': _schedule('multistep'),
    'decay_rate': _schedule('step', 'multistep'),
    'min_lr': _schedule('cosine'),
    'momentum': (lambda args: get_optimizer_info(args.opt).has_momentum,
                 lambda args, option: f'the {args.opt} optimizer takes no momentum; drop --momentum or choose one '
                                      f'that does (sgd, ...)'),
    **{option: _loss(losses) for option, losses in LOSS_OPTIONS.items()},
    'mixup_prob': (_with_mixup, _applies_with('--mixup or --cutmix')),
    'mixup_switch_prob': (_with_mixup, _applies_with('--mixup or --cutmix')),
    'distill_weight': (lambda args: args.distill is not None, _applies_with('--distill')),
    'model_ema_decay': (lambda args: args.model_ema, _applies_with('--model-ema')),
    'reset_classifier': (lambda args: args.pretrained, _applies_with('--pretrained')),
    'torchcompile_mode': (lambda args: bool(args.torchcompile), _applies_with('--torchcompile')),
    'num_workers': (lambda args: input_pipeline(args) == 'pil',
                    lambda args, option: '--num-workers applies to the pil input pipeline; the tensor pipeline needs '
                                         'no worker. Drop it, or pass --input-pipeline pil.'),
    'diagnose_batches': (lambda args: args.diagnose_every > 0, _applies_with('--diagnose-every')),
}

# Options that cannot run together, each with its one line.
CONFLICTS = (
    (lambda args: _with_mixup(args) and args.loss not in SOFT_TARGET_LOSSES,
     lambda args: f'--mixup/--cutmix make soft targets, which the {args.loss} loss does not take; use --loss '
                  f'{" or ".join(SOFT_TARGET_LOSSES)}.'),
    (lambda args: args.distill is not None and _with_mixup(args),
     lambda args: '--distill and --mixup/--cutmix each make the soft targets; use one of them.'),
    (lambda args: args.distill is not None and args.loss not in SOFT_TARGET_LOSSES,
     lambda args: f'--distill makes soft targets, which the {args.loss} loss does not take; use --loss '
                  f'{" or ".join(SOFT_TARGET_LOSSES)}.'),
    # the pil pipeline's batches do not say which images they hold
    (lambda args: args.distill is not None and input_pipeline(args) != 'tensor',
     lambda args: '--distill looks up each image\'s teacher probabilities by index, which only the tensor input '
                  'pipeline (ELPV) gives; use --input-pipeline tensor.'),
    (lambda args: args.sam_rho and args.grad_accum_steps > 1,
     lambda args: '--sam-rho needs the whole gradient of an update before its second pass; drop --grad-accum-steps '
                  'or use a larger --batch-size.'),
    (lambda args: args.fused_norm_act and not args.channels_last,
     lambda args: '--fused-norm-act runs on channels_last maps only; add --channels-last or drop --fused-norm-act'),
    (lambda args: input_pipeline(args) == 'tensor' and tensor_augment_problem(args.augment),
     lambda args: tensor_augment_problem(args.augment)),
    (lambda args: args.cosine_scale and args.ldam_scale != 1,
     lambda args: f'--cosine-scale {args.cosine_scale} already scales the normalised logits; --ldam-scale '
                  f'{args.ldam_scale} would scale them again. Drop --ldam-scale.'),
    (lambda args: args.loss == 'ldam' and args.class_weights != 'none',
     lambda args: f'the ldam loss ignores class weights (deferred re-weighting brings its own); pass --class-weights '
                  f'none (got {args.class_weights!r}).'),
)


def check_args(args: argparse.Namespace) -> None:
    """Raise RunError with one line for a config that cannot run as asked, reading only the arguments: an option
    the rest ignores (APPLIES_WITH), options that conflict (CONFLICTS), and values that cannot be (an unknown
    model or dataset, a schedule that never decays, a mean per channel missing, a compile backend that is none)."""
    defaults = build_parser()
    for option, (applies, why) in APPLIES_WITH.items():
        value = getattr(args, option)
        # a resumed run's args.yaml records every option, at the defaults of the version that started it
        earlier_default = args.resume is not None and option in EARLIER_DEFAULTS and value == EARLIER_DEFAULTS[option]
        if value != defaults.get_default(option) and not earlier_default and not applies(args):
            raise RunError(why(args, option))
    for conflicts, why in CONFLICTS:
        if conflicts(args):
            raise RunError(why(args))
    if ':' not in args.model and not timm.is_model(args.model):
        close = difflib.get_close_matches(args.model, timm.list_models(), n=3)
        raise RunError(f'unknown model {args.model!r}' + (f'; did you mean {", ".join(close)}?' if close else
                                                         '; see timm.list_models()'))
    if args.sched == 'multistep' and not all(a < b for a, b in zip(args.decay_milestones, args.decay_milestones[1:])):
        raise RunError(f'--decay-milestones must increase (got {" ".join(map(str, args.decay_milestones))})')
    # a decay at or after the last epoch never happens (epochs count from 0)
    if args.sched == 'step' and args.decay_epochs >= args.epochs:
        raise RunError(f'--decay-epochs {args.decay_epochs:g} is not below --epochs {args.epochs}, so the step '
                       f'schedule would never decay; lower --decay-epochs or train longer')
    late = [m for m in args.decay_milestones if m >= args.epochs] if args.sched == 'multistep' else []
    if late:
        raise RunError(f'--decay-milestones {" ".join(map(str, late))} fall at or after --epochs {args.epochs} and '
                       f'would never decay; pass milestones below it with --decay-milestones or train longer')
    for flag in ('mean', 'std'):
        if getattr(args, flag) and len(getattr(args, flag)) != args.in_chans:
            raise RunError(f'--{flag} has {len(getattr(args, flag))} value(s) for --in-chans {args.in_chans}; give '
                           f'one per input channel')
    if args.sam_rho:
        try:
            check_rho(args.sam_rho)
        except ValueError as e:
            raise RunError(f'--sam-rho: {e}; or 0 for no SAM.') from None
    try:
        check_augment_options(args.augment)
        check_dataset_request(args.dataset, args.data_dir, args.hub_id, args.val_fraction, args.test_fraction,
                              args.dataset_options)
        if args.torchcompile:
            check_compile_backend(args.torchcompile)
    except (DatasetError, PrecisionError) as e:
        raise RunError(str(e)) from None


class EpochClock:
    """An epoch's wall time, training time and the share of it the steps waited for data (input-bound if large)."""

    def __init__(self):
        self.start = self.ready = time.time()
        self.data_wait = self.train_time = 0.0

    def batch_arrived(self):
        self.data_wait += time.time() - self.ready

    def step_done(self):
        self.ready = time.time()

    def training_done(self):
        self.train_time = time.time() - self.start

    def record(self, images):
        return {'train_img_per_s': images / self.train_time, 'epoch_time_s': time.time() - self.start,
                'data_wait_fraction': self.data_wait / self.train_time}


def main(argv=None) -> None:
    parser = build_parser()
    try:
        args = resolve_config(parser, sys.argv[1:] if argv is None else argv)
        check_args(args)
        check_run_dir(args, Path(args.output_dir))
        if args.distill is not None:
            read_teacher(args.distill)  # its labels are matched to the train split once the data is built
    except (RunError, DistillError) as e:
        sys.exit(f'error: {e}')
    out_dir = Path(args.output_dir)

    # -------------------------------------------------------------------------------------------- accelerator
    # device and process count, to choose precision and threads (ACCELERATE_USE_CPU as the Accelerator reads it)
    process = PartialState(cpu=parse_flag_from_env('ACCELERATE_USE_CPU'))
    try:
        mixed_precision, precision_note = resolve_mixed_precision(args.mixed_precision, process.device)
        torch.set_num_threads(cpu_threads(args.threads, int(os.environ.get('LOCAL_WORLD_SIZE', process.num_processes))))
    except PrecisionError as e:
        sys.exit(f'error: {e}')
    accelerator = Accelerator(
        mixed_precision=mixed_precision,
        gradient_accumulation_steps=args.grad_accum_steps,
        log_with=None if args.report_to == 'none' else args.report_to,
        project_config=ProjectConfiguration(project_dir=str(out_dir), logging_dir=str(out_dir / 'logs')),
        # a sampler reseeded from (seed, epoch) makes the data order of a resumed epoch that of the original run
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    if int(os.environ.get('WORLD_SIZE', '1')) > 1 and accelerator.num_processes == 1:
        sys.exit('error: the launcher started several processes but accelerate sees one (each would train alone and '
                 'write the same run). On CPU use: ACCELERATE_USE_CPU=true accelerate launch --multi_gpu '
                 '--num_processes N train.py ...')

    if accelerator.is_main_process:
        try:
            prepare_run_dir(args, out_dir)
        except RunError as e:  # a folder this user cannot write
            sys.exit(f'error: {e}')
        if args.resume is None:
            write_json(out_dir / 'provenance.json', provenance(accelerator, Path(__file__).resolve().parent))
    accelerator.wait_for_everyone()
    set_seed(args.seed)

    # -------------------------------------------------------------------------------------------- data
    try:
        dataset, skipped = build_run_dataset(args)
    except DatasetError as e:
        sys.exit(f'error: {e}')
    if skipped:
        accelerator.print(f'--skip-corrupt: skipped {skipped} image(s) that cannot be decoded')
    label_names = dataset['train'].features['label'].names
    counts = list(class_counts(dataset['train']).values())

    # -------------------------------------------------------------------------------------------- model
    model_kwargs = dict(num_classes=len(label_names), in_chans=args.in_chans)
    if args.drop_rate is not None:
        model_kwargs['drop_rate'] = args.drop_rate
    # a csba model takes the cosine classifier as a model argument (config.json's model_args rebuild it); any
    # other timm model has its classifier swapped below and config.json records the scale (pretrained.py reads it)
    csba_cosine = args.cosine_scale and model_architecture(args.model).startswith('csba_')
    if csba_cosine:
        model_kwargs['cosine_scale'] = args.cosine_scale
    try:
        if args.pretrained:
            pretrained_classes = pretrained_num_classes(args.model)
            if pretrained_classes != len(label_names) and not args.reset_classifier:
                sys.exit(f'error: the pretrained weights of {args.model} have {pretrained_classes} classes, the '
                         f'dataset has {len(label_names)}. Pass --reset-classifier to load everything but the '
                         f'classifier, which timm then re-creates for {len(label_names)} classes '
                         f'(model.reset_classifier).')
        model = load_pretrained(args.model, **model_kwargs) if args.pretrained else \
            timm.create_model(args.model, **model_kwargs)
        if args.cosine_scale and not csba_cosine:
            use_cosine_classifier(model, args.cosine_scale)
    except (RuntimeError, ValueError) as e:
        sys.exit(f'error: {e}')
    # what best/config.json records beside timm's fields
    saved_config = {'cosine_scale': args.cosine_scale} if args.cosine_scale and not csba_cosine else {}
    data_config = resolve_data_config(model=model)
    size = [args.img_size] * 2 if args.img_size else data_config['input_size'][1:]
    data_config['input_size'] = (args.in_chans, *size)
    data_config['mean'] = tuple(args.mean or data_config['mean'][:args.in_chans])
    data_config['std'] = tuple(args.std or data_config['std'][:args.in_chans])
    train_tf = build_transforms(data_config, is_training=True, **args.augment)
    eval_tf = build_transforms(data_config, is_training=False)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    fused_note = ''
    if args.fused_norm_act:
        if accelerator.device.type != 'cpu':
            fused_note = f'; fused norm+act off (a CPU kernel; {accelerator.device.type} runs PyTorch\'s layers)'
        elif args.torchcompile:
            fused_note = '; fused norm+act off (under torch.compile, which traces these layers itself)'
        else:
            try:
                fused_note = f'; fused norm+act: {use_fused_norm_act(model)} layers'
            except FusedNormActError as e:
                fused_note = f'; fused norm+act off: {e}'
    # the average is a copy of the plain model, made before compiling (it is evaluated eagerly, a few times an epoch)
    ema = ModelEmaV3(model, decay=args.model_ema_decay, use_warmup=True, device=accelerator.device) if args.model_ema \
        else None
    if args.torchcompile:
        try:
            compile_in_place(model, args.torchcompile, args.torchcompile_mode, accelerator.device)
        except PrecisionError as e:  # inductor on a CPU without a C++ compiler
            sys.exit(f'error: {e}')
    pipeline = input_pipeline(args)
    if pipeline == 'tensor':
        augment = BatchAugment(data_config, **args.augment, seed=args.seed, rank=accelerator.process_index)
    held = hold_freed_memory()  # no page faults for the activation maps of every step
    accelerator.print(f'precision: {precision_note}; {torch.get_num_threads()} threads per process; '
                      f'input pipeline: {pipeline}; freed memory {"held (glibc)" if held else "returned to the OS"}'
                      + (f'; torch.compile ({args.torchcompile})' if args.torchcompile else '') + fused_note)

    def loader(split, transform, shuffle):
        sampler = None
        if shuffle and args.sampler != 'none':
            sampler, shuffle = ClassAwareSampler(dataset[split]['label'], SAMPLERS[args.sampler], seed=args.seed), False
        if pipeline == 'tensor':
            return torch.utils.data.DataLoader(cached_pixels(dataset[split], data_config), batch_size=args.batch_size,
                                               shuffle=shuffle, sampler=sampler, collate_fn=collate_pixels)
        workers = default_num_workers() if args.num_workers is None else args.num_workers
        return torch.utils.data.DataLoader(
            attach_transform(dataset[split], transform), batch_size=args.batch_size, shuffle=shuffle, sampler=sampler,
            num_workers=workers, drop_last=False, persistent_workers=workers > 0)

    def model_inputs(pixel_values, training):
        """The model's input batch: tensor pipeline batches are uint8, augmented (training) and normalised here."""
        x = pixel_values
        if pipeline == 'tensor':
            x = augment(x) if training else normalize(x, data_config['mean'], data_config['std'])
        return x.contiguous(memory_format=torch.channels_last) if args.channels_last else x

    try:
        with accelerator.main_process_first():  # the main process writes the pixel cache, the others read it
            train_loader = loader('train', train_tf, shuffle=True)
            val_loader = loader('validation', eval_tf, shuffle=False)
            test_loader = loader('test', eval_tf, shuffle=False)
    except DatasetError as e:  # an undecodable image while filling the pixel cache
        sys.exit(f'error: {e}')

    # -------------------------------------------------------------------------------------------- loss, optimizer
    try:
        criterion = create_loss_from_config(vars(args), counts, recorded=args.resume is not None)
    except ValueError as e:  # weights for a class without images (the options were checked before)
        sys.exit(f'error: {e}')
    mixup = Mixup(mixup_alpha=args.mixup, cutmix_alpha=args.cutmix, prob=args.mixup_prob,
                  switch_prob=args.mixup_switch_prob, label_smoothing=0.0, num_classes=len(label_names)) \
        if args.mixup or args.cutmix else None
    teacher = None
    if args.distill:
        try:
            teacher = load_teacher(args.distill, dataset['train']['label'], len(label_names)).to(accelerator.device)
        except DistillError as e:  # a teacher file made for another split
            sys.exit(f'error: {e}')
    # the parameters stay the same objects through accelerator.prepare
    sam = SharpnessAware(model, args.sam_rho) if args.sam_rho else None
    optimizer = create_optimizer_v2(model, opt=args.opt, lr=args.lr, weight_decay=args.weight_decay,
                                    momentum=args.momentum)
    model, optimizer, train_loader, val_loader, test_loader = accelerator.prepare(
        model, optimizer, train_loader, val_loader, test_loader)
    criterion = criterion.to(accelerator.device)
    # The scheduler is stepped by hand once per optimizer update and sized from the per-process loader, so its
    # schedule is the same for any number of processes (accelerate's prepared scheduler would step N times).
    updates_per_epoch = math.ceil(len(train_loader) / args.grad_accum_steps)
    scheduler, _ = create_scheduler_v2(
        optimizer, sched=args.sched, num_epochs=args.epochs, decay_epochs=args.decay_epochs,
        decay_milestones=args.decay_milestones,
        decay_rate=args.decay_rate, warmup_epochs=args.warmup_epochs, min_lr=args.min_lr,
        step_on_epochs=False, updates_per_epoch=updates_per_epoch)

    state = TrainState()
    accelerator.register_for_checkpointing(scheduler, state, *([ema] if ema else []))
    if args.resume:
        try:
            checkpoint = latest_checkpoint(Path(args.resume))
        except RunError as e:
            sys.exit(f'error: {e}')
        accelerator.load_state(str(checkpoint))
        accelerator.print(f'resumed from {checkpoint} after epoch {state.epoch}')
    accelerator.init_trackers(out_dir.name, config={k: str(v) if isinstance(v, (dict, list)) else v
                                                     for k, v in vars(args).items()})

    def split_logits(net, data_loader):
        """(logits, labels) of `net` over a split on every process; gather_for_metrics drops the last batch's
        padding."""
        net.eval()
        logits, labels = [], []
        with torch.no_grad(), accelerator.autocast():  # the EMA copy is not wrapped by accelerate's autocast
            for batch in data_loader:
                out = net(model_inputs(batch['pixel_values'], training=False))
                out, target = accelerator.gather_for_metrics((out, batch['label']))
                logits.append(out.float())
                labels.append(target)
        return torch.cat(logits), torch.cat(labels)

    def scores(logits, labels):
        """Return (metrics, mean loss) of a split's logits."""
        loss = criterion(logits, labels).item()  # the training loss, so that val - train is a generalisation gap
        metrics = classification_metrics(labels.cpu(), logits.argmax(1).cpu(), label_names)
        return metrics, loss

    def stop_unless_finite(loss, epoch, step):
        """The NaN policy: stop at the first non-finite loss on any process, naming the checkpoint to resume from."""
        if torch.isfinite(accelerator.gather(loss.detach())).all():
            return
        last_good = saved_epochs(out_dir)
        sys.exit(f'error: the loss is {loss.item()} at epoch {epoch}, step {step}; training stopped. Last good '
                 f'checkpoint: {last_good[-1] if last_good else "none yet"}. Lower --lr, set --clip-grad or check the '
                 f'inputs, then --resume (or start again).')

    def conflict_record():
        """Conflict over training: backbone GCM summaries on a few single-class train batches (eval transforms)."""
        with torch.compiler.set_stance('force_eager'):  # single-class batches of any size: no recompiles
            diag = analyze(accelerator.unwrap_model(model), attach_transform(dataset['train'], eval_tf),
                           dataset['train']['label'], label_names, criterion, batch_size=args.batch_size,
                           max_batches=args.diagnose_batches, accelerator=accelerator).parameter_sets['backbone']
        return {f'gcm_{kind}_{stat}': getattr(diag.summary[kind], stat) for kind in ('cosine', 'magnitude')
                for stat in ('mean_off_diagonal', 'mean_most_negative_pairs')}

    # -------------------------------------------------------------------------------------------- train
    for epoch in range(state.epoch + 1, args.epochs + 1):
        train_loader.set_epoch(epoch)
        if pipeline == 'tensor':
            augment.set_epoch(epoch)
        if hasattr(criterion, 'set_epoch'):
            criterion.set_epoch(epoch - 1)  # epochs completed, as the scheduler counts its milestones
        # the rate of the epoch's first update: after the last one it is already the next epoch's at a milestone
        epoch_lr = optimizer.param_groups[0]['lr']
        model.train()
        loss_sum, seen, clock = torch.zeros((), device=accelerator.device), 0, EpochClock()
        progress = tqdm(train_loader, desc=f'epoch {epoch}/{args.epochs}',
                        disable=not accelerator.is_local_main_process)
        for step, batch in enumerate(progress):
            clock.batch_arrived()
            with accelerator.accumulate(model):
                x, target = model_inputs(batch['pixel_values'], training=True), batch['label']
                # timm's Mixup pairs images: an odd last batch stays as is
                if mixup is not None and len(target) % 2 == 0:
                    x, target = mixup(x, target)
                if teacher is not None:
                    target = distill_targets(target, teacher[batch['index']], args.distill_weight)
                loss = criterion(model(x), target)
                stop_unless_finite(loss, epoch, step)
                accelerator.backward(loss)
                if sam is not None:  # the update's gradient is taken again at the sharpest nearby point
                    sam.ascend()
                    with sam.frozen_norm_statistics():
                        accelerator.backward(criterion(model(x), target))
                    sam.descend()
                if accelerator.sync_gradients and args.clip_grad:
                    accelerator.clip_grad_norm_(model.parameters(), args.clip_grad)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if accelerator.sync_gradients:
                    state.updates += 1
                    scheduler.step_update(num_updates=state.updates)
                    if ema is not None:
                        ema.update(accelerator.unwrap_model(model), step=state.updates)
            loss_sum += loss.detach() * len(batch['label'])
            seen += len(batch['label'])
            progress.set_postfix(loss=f'{loss.item():.4f}')
            clock.step_done()
        clock.training_done()
        train_loss = (accelerator.reduce(loss_sum, 'sum') / accelerator.reduce(
            torch.tensor(seen, device=accelerator.device, dtype=torch.float), 'sum')).item()
        selected = ema.module if ema is not None else model  # the weights that are validated, kept and published
        val_logits, val_labels = split_logits(selected, val_loader)
        val, val_loss = scores(val_logits, val_labels)

        state.epoch = epoch
        state.val_logits.append((epoch, val_logits.half().cpu()))
        improved = val[args.monitor] > state.best + args.min_delta
        if improved:
            state.best, state.best_epoch, state.bad_epochs = val[args.monitor], epoch, 0
        else:
            state.bad_epochs += 1
        record = {'epoch': epoch, 'lr': epoch_lr, 'train_loss': train_loss,
                  'val_loss': val_loss, 'generalization_gap': val_loss - train_loss,
                  **clock.record(seen * accelerator.num_processes), **{f'val_{k}': val[k] for k in METRICS},
                  **{f'val_f1_{n}': v['f1'] for n, v in val['per_class'].items()}}
        if hasattr(criterion, 'reweighted'):
            record['reweighted'] = criterion.reweighted  # LDAM's deferred re-weighting in force this epoch
        if args.torchcompile:
            record['compiled_graphs'] = compiled_graphs()  # cumulative: flat after the first epoch, or it recompiles
        if args.diagnose_every and epoch % args.diagnose_every == 0:
            record.update(conflict_record())
        state.history.append(record)
        accelerator.log({k: v for k, v in record.items() if k != 'epoch'}, step=epoch)
        accelerator.print(f'epoch {epoch}: train loss {train_loss:.4f}, val loss {val_loss:.4f}, '
                          f'val {args.monitor} {val[args.monitor]:.4f} (best {state.best:.4f} @ {state.best_epoch})')
        if improved and accelerator.is_main_process:
            save_pretrained(accelerator.unwrap_model(selected), out_dir / 'best', label_names, data_config,
                            extra_config=saved_config)
        save_checkpoint(accelerator, out_dir, epoch,
                        keep=(state.best_epoch, *range(epoch + 1 - args.keep_last, epoch + 1)))
        if accelerator.is_main_process:
            write_text(out_dir / 'metrics.jsonl', ''.join(json.dumps(r) + '\n' for r in state.history))
            save_epoch_logits(out_dir / 'val_predictions.npz', *zip(*state.val_logits), val_labels.cpu())
        if args.patience and state.bad_epochs >= args.patience:
            accelerator.print(f'early stop: no {args.monitor} improvement for {args.patience} epochs')
            break

    # -------------------------------------------------------------------------------------------- test
    accelerator.wait_for_everyone()
    best = timm.create_model(f'local-dir:{out_dir / "best"}', pretrained=True)
    accelerator.unwrap_model(model).load_state_dict(best.state_dict())
    calibration = {}
    if args.logit_offsets == 'fit':
        best_config = json.loads((out_dir / 'best' / 'config.json').read_text())
        if 'logit_offsets' not in best_config:  # else a resumed run whose best/ already carries them
            val_logits, val_labels = (t.cpu().numpy() for t in split_logits(model, val_loader))
            offsets = fit_logit_offsets(val_logits, val_labels).tolist()

            def val_macro_f1(predictions):
                return classification_metrics(val_labels, predictions, label_names)['macro_f1']

            calibration = {  # validation macro-F1 as selected, cross-fitted (the honest estimate) and fitted
                'logit_offsets': offsets,
                'val_macro_f1_before_offsets': val_macro_f1(val_logits.argmax(1)),
                'val_macro_f1_offsets_cross_fitted': val_macro_f1(cross_fitted_predictions(val_logits, val_labels)),
                'val_macro_f1_offsets_fitted': val_macro_f1((val_logits + offsets).argmax(1)),
            }
            fold_logit_offsets(accelerator.unwrap_model(model), offsets)
            if accelerator.is_main_process:
                save_pretrained(accelerator.unwrap_model(model), out_dir / 'best', label_names, data_config,
                                extra_config={**saved_config, **calibration})
        else:
            calibration = {k: v for k, v in best_config.items() if 'offsets' in k}
        accelerator.print(f'logit offsets {calibration["logit_offsets"]} folded into best/')
    test_logits, test_labels = split_logits(model, test_loader)
    test, test_loss = scores(test_logits, test_labels)
    test.update(split='test', loss=test_loss, best_epoch=state.best_epoch, model=args.model, dataset=args.dataset,
                seed=args.seed, **{f'val_{args.monitor}': state.best}, **calibration)
    if accelerator.is_main_process:
        save_predictions(out_dir / 'test_predictions.csv', test_labels.cpu(), test_logits.cpu(), label_names)
        write_json(out_dir / 'test_metrics.json', test)
        with atomic_path(out_dir / 'confusion_matrix.png') as png:
            save_confusion_matrix(test, str(png), title=f'{args.model} on {args.dataset} test: accuracy '
                                  f'{test["accuracy"]:.3f}, macro-F1 {test["macro_f1"]:.3f}')
    accelerator.print(json.dumps({k: test[k] for k in ('accuracy', 'balanced_accuracy', 'macro_f1')}))
    accelerator.wait_for_everyone()  # every rank tears the process group down together, none while rank 0 writes
    accelerator.end_training()


if __name__ == '__main__':
    main()
