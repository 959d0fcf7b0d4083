"""Issue 13's lever study: train base.yaml (the main preset when the study began) with one change at a time and
compare on validation only.

    python studies/elpv_recipe/levers.py run sqrt_sampler balanced_sampler     # two runs side by side, 1 thread each
    python studies/elpv_recipe/levers.py run balanced_sampler+ema              # levers combine with '+'
    python studies/elpv_recipe/levers.py run hub+img_96+epochs_150+seed_0      # on the published recipe instead
    python studies/elpv_recipe/levers.py run hub+img_96+epochs_150+seed_0+then_224   # a final phase of that run
    python studies/elpv_recipe/levers.py summary                               # table of best validation epochs
    python studies/elpv_recipe/levers.py summary hub+img_96+epochs_150+seed_2+bf16   # these runs (runs/ or results/)

Runs land in runs/elpv_levers/<name>; a run that was killed is resumed, a finished one skipped. Model
selection is the best validation macro-F1 epoch; test metrics are not read here. Every run also fits logit
offsets on validation after training (post-hoc, free): the summary gives their cross-fitted validation
macro-F1 (fitted on one half of validation, scored on the other), the honest estimate of that lever.
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from timm_csba.runs import saved_epochs

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / 'runs' / 'elpv_levers'
# the config a run starts from: base.yaml, or another one named by the run's first component ('hub+...')
BASES = {'hub': ROOT / 'configs' / 'elpv_hub.yaml'}
CONFIG = Path(__file__).resolve().parent / 'base.yaml'
RESULTS = Path(__file__).resolve().parent / 'results'  # finished runs' args.yaml and metrics.jsonl, committed

# lever -> train.py flags on top of base.yaml (30 epochs, 224 px, sqrt_inverse class weights, seed 42)
LEVERS = {
    'baseline': [],
    'sqrt_sampler': ['--sampler', 'sqrt', '--class-weights', 'none'],
    'balanced_sampler': ['--sampler', 'balanced', '--class-weights', 'none'],
    'sqrt_sampler_sqrt_weights': ['--sampler', 'sqrt'],
    'epochs_60': ['--epochs', '60'],
    'epochs_90': ['--epochs', '90'],
    'epochs_150': ['--epochs', '150'],  # the 90-epoch runs' train and val losses were still falling
    'label_smoothing_0.1': ['--label-smoothing', '0.1'],
    'img_300': ['--img-size', '300'],
    'img_160': ['--img-size', '160'],
    'img_128': ['--img-size', '128'],
    'img_112': ['--img-size', '112'],
    'img_96': ['--img-size', '96'],
    'img_80': ['--img-size', '80'],  # with epochs_180: the compute of 96 px / 150 epochs (fixed costs ~11 s an epoch)
    'epochs_120': ['--epochs', '120'],
    'epochs_180': ['--epochs', '180'],
    'epochs_300': ['--epochs', '300'],  # is hub96 short of fit at 150? it fits further, validation stays flat
    'epochs_75': ['--epochs', '75'],  # with lr_5e-4, which reaches 0.59 by epoch 56 of 150: half the compute?
    # the fractal start's validation loss bottoms out at epochs 34-44 of 150 and it overfits after: its own schedule
    'epochs_50': ['--epochs', '50'],
    'no_dropout': ['--drop-rate', '0'],
    'batch_16': ['--batch-size', '16', '--lr', '0.0014'],
    'inverse_weights': ['--class-weights', 'inverse'],
    'ema': ['--model-ema'],
    'ordinal': ['--loss', 'ordinal'],
    'mixup': ['--mixup', '0.2', '--cutmix', '1.0'],
    'sam_0.05': ['--sam-rho', '0.05'],  # a second pass per update: twice the step's compute
    # the imbalance-training paper's regularisers (Shwartz-Ziv et al. 2023, arXiv:2312.02517): stronger crops and
    # jitter; AdamW's decay at 5x
    'strong_aug': ['--augment', '{hflip: 0.5, vflip: 0.5, rot90: true, scale: [0.5, 1.0], '
                   'ratio: [0.75, 1.333], color_jitter: 0.4}'],
    'weight_decay_0.05': ['--weight-decay', '0.05'],
    'seed_1': ['--seed', '1'],  # the same recipe at another training seed: how much of a difference is noise
    'seed_0': ['--seed', '0'],  # with seed_1: the training seeds of the published weights' runs, paired with them
    'seed_2': ['--seed', '2'],  # the third of them: a lever that wins at seeds 0 and 1 must hold here too
    'seed_3': ['--seed', '3'],  # seeds no teacher of the 'distill' lever was trained at
    'seed_4': ['--seed', '4'],
    'sum': ['--model', 'csba_squeeze_sum'],
    # the fast path where the CPU runs bf16 natively (avx512_bf16, AMX): about a third of fp32's epoch; does
    # the recipe learn the same in it? (the hub recipe trains fp32 so that every machine gets the same numbers)
    'bf16': ['--mixed-precision', 'bf16'],
    # distillation from a seed ensemble (the bf16 runs of 96 and 160 px, seeds 0-2), made first with
    # python -m timm_csba.distill runs/elpv_levers/hub+img_{96,160}+epochs_150+seed_{0,1,2}+bf16/best \
    #     --out runs/teachers/elpv_six.npz
    # (their validation-fitted logit offsets taken out): does one model learn what six do together?
    'distill': ['--distill', 'runs/teachers/elpv_six.npz', '--distill-weight', '0.5'],
    # a lower peak learning rate: at the preset's 2e-3 the train loss stays near 1.1 for the first 50 epochs and
    # the middle grades are learnt only once the cosine has brought it under about 1.3e-3
    'lr_5e-4': ['--lr', '0.0005'],
    'lr_1e-3': ['--lr', '0.001'],
    # the long-tail losses on the data's own frequencies instead of square-root sampling: the balanced softmax
    # (logit adjustment, tau = 1; Ren et al. 2020, Menon et al. 2021) targets balanced error directly
    'balanced_softmax': ['--sampler', 'none', '--loss', 'logit_adjusted'],
    # the same adjustment under the recipe's square-root sampler: it removes the sampled prior (n_c^1/2)
    'logit_adjusted': ['--loss', 'logit_adjusted'],
    # label-distribution-aware margins with deferred re-weighting from 80 % of training, as Cao et al. 2019 run it
    'ldam_drw': ['--sampler', 'none', '--loss', 'ldam', '--drw-epoch', '120'],
    # Cao et al.'s scale s = 30 is for cosine logits in [-1, 1]; our heads' logits are not normalised
    'ldam_scale_1': ['--ldam-scale', '1'],
    'focal': ['--loss', 'focal'],  # gamma 2, the paper's Variant II, under the recipe's sampler
    'no_sampler': ['--sampler', 'none'],  # the recipe's square-root sampler, ablated at its full length
    # SGD with Nesterov momentum (timm's 'sgd') and L2 decay, the usual optimiser of CNNs trained from scratch,
    # whose minima often generalise better than Adam's; peak learning rate 0.05 at batch 32, or 0.02
    'sgd': ['--opt', 'sgd', '--lr', '0.05', '--momentum', '0.9', '--weight-decay', '0.0005'],
    # a start from the backbone pretrained on formula-driven fractals (configs/fractal_pretrain.yaml; no real image),
    # its 1,000-category classifier replaced by ELPV's four grades
    'fractal': ['--model', 'local-dir:runs/fractal_pretrain/best', '--pretrained', '--reset-classifier'],
    'lr_0.02': ['--lr', '0.02'],
}
# a final phase: the run named before it, fine-tuned from its best checkpoint at a larger size with a short
# cosine from a tenth of the peak learning rate (the cells' thin cracks are a few pixels wide at 300 px)
PHASES = {
    'then_224': ['--img-size', '224', '--epochs', '10', '--lr', '0.0002', '--warmup-epochs', '0'],
}
POST_HOC = ['--logit-offsets', 'fit']


def split_base(name: str) -> tuple:
    """(config, levers) of a run name: 'hub+img_96+seed_0' starts from configs/elpv_hub.yaml, 'ema' from base.yaml."""
    first, *rest = name.split('+')
    return (BASES[first], rest) if first in BASES else (CONFIG, [first, *rest])


def phase_source(name: str) -> str:
    """The run a final phase starts from: the name up to its last phase ('' when it has none)."""
    parts = name.split('+')
    last = max((i for i, part in enumerate(parts) if part in PHASES), default=None)
    return '' if last is None else '+'.join(parts[:last])


def flags(name: str) -> list:
    """train.py flags of a lever or of levers joined by '+' (later flags win, as on train.py's command line); a
    phase adds the best checkpoint of the run named before it as pretrained weights."""
    parts, out = name.split('+'), []
    for i, part in enumerate(parts):
        if part in PHASES:
            source = (RUNS / '+'.join(parts[:i]) / 'best').relative_to(ROOT)
            out += ['--model', f'local-dir:{source}', '--pretrained', *PHASES[part]]
        elif not (i == 0 and part in BASES):
            out += LEVERS[part]
    return out + POST_HOC


def command(lever: str) -> list:
    # paths relative to the repository root (the runs' cwd), so a run's recorded command is one a fresh clone runs
    run = RUNS / lever
    if saved_epochs(run):
        return [sys.executable, 'train.py', '--resume', str(run.relative_to(ROOT)), '--threads', '1']
    return [sys.executable, 'train.py', '--config', str(split_base(lever)[0].relative_to(ROOT)), '--output-dir',
            str(run.relative_to(ROOT)), '--overwrite', '--threads', '1', *flags(lever)]


def run(levers: list) -> None:
    RUNS.mkdir(parents=True, exist_ok=True)
    procs = []
    for lever in levers:
        if (RUNS / lever / 'test_metrics.json').exists():
            print(f'{lever}: finished, skipped')
            continue
        source = phase_source(lever)
        if source and not (RUNS / source / 'test_metrics.json').exists():
            print(f'{lever}: its source run {source} has not finished; run it first')
            continue
        log = open(RUNS / f'{lever}.log', 'a')
        procs.append((lever, subprocess.Popen(command(lever), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)))
    for lever, proc in procs:
        print(f'{lever}: exit {proc.wait()}')


def summary(names: list) -> None:
    """One row per run: the named ones (looked up in runs/, then in results/, where finished runs are kept), else
    every run under runs/."""
    if names:
        runs = [RUNS / n if (RUNS / n / 'metrics.jsonl').exists() else RESULTS / n for n in names]
        missing = [r.name for r in runs if not (r / 'metrics.jsonl').exists()]
        if missing:
            sys.exit(f'error: no metrics.jsonl for {", ".join(missing)} in {RUNS} or {RESULTS}')
    else:
        runs = sorted(p for p in RUNS.iterdir() if (p / 'metrics.jsonl').exists())
    print('| run | flags | epochs run | best epoch | val acc | val macro-F1 | val F1 per grade | '
          'val macro-F1, last 10 epochs | + offsets, cross-fitted | s/epoch |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for run in runs:
        history = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
        best = max(history, key=lambda r: r['val_macro_f1'])
        grades = ' / '.join(f'{v:.2f}' for k, v in best.items() if k.startswith('val_f1_'))
        seconds = sum(r['epoch_time_s'] for r in history) / len(history)
        tail = [r['val_macro_f1'] for r in history[-10:]]  # steadier than the best epoch, which selection inflates
        finished = run / 'test_metrics.json'  # only its validation-side calibration record is read
        record = json.loads(finished.read_text()) if finished.exists() else {}
        offsets = record.get('val_macro_f1_offsets_cross_fitted')
        print(f'| {run.name} | `{" ".join(flags(run.name))}` | {len(history)} | {best["epoch"]} | '
              f'{best["val_accuracy"]:.3f} | {best["val_macro_f1"]:.3f} | {grades} | '
              f'{statistics.mean(tail):.3f} ± {statistics.stdev(tail):.3f} | '
              f'{"—" if offsets is None else f"{offsets:.3f}"} | {seconds:.0f} |')


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('action', choices=('run', 'summary'))
    parser.add_argument('levers', nargs='*', help=f'levers to run: {", ".join(LEVERS)}; a first component '
                                                  f'{" or ".join(BASES)} starts from that config; a phase '
                                                  f'({", ".join(PHASES)}) continues the run named before it')
    args = parser.parse_args()
    unknown = sorted({lever for name in args.levers for lever in split_base(name)[1]} - set(LEVERS) - set(PHASES))
    if unknown:
        sys.exit(f'error: unknown lever(s) {", ".join(unknown)}; choose from {", ".join([*LEVERS, *PHASES])}')
    if args.action == 'run':
        run(args.levers)
    else:
        summary(args.levers)
