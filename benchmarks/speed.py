"""Train-step and inference throughput of csba_squeeze, csba_squeeze_sum and timm resnet18 under each speed lever
of train.py alone and under its default fast path, timed side by side (round-robin) in one run.

    python benchmarks/speed.py                      # 224 px, batch 32, 1 input channel (ELPV), all cores
    python benchmarks/speed.py --no-compile         # skip the torch.compile rows (about 30-60 s of compiling each)

Paths (each model runs every path; a path's model is its own copy):
    eager fp32      NCHW, fp32: what train.py did before the fast path
    channels_last   the memory format alone
    bf16            bf16 autocast alone (CPU: only where the processor runs bf16 natively)
    compile         torch.compile (inductor, default mode, in place) alone
    tensor input    eager fp32 plus the tensor pipeline's batch augmentation inside the step (it replaces the
                    DataLoader workers' PIL transforms, which cost a core, by work in the training process)
    held memory     glibc keeps freed memory instead of unmapping it (runtime.hold_freed_memory). It is set for
                    the rest of the process, so the rows without it are timed first (round-robin among
                    themselves), then the rows with it (likewise)
    fused norm+act  channels_last plus the fused BatchNorm + LeakyReLU CPU kernel (--fused-norm-act, which needs
                    channels_last; compare with the channels_last row). It takes over only timm's BatchNormAct2d
                    layers: none in resnet18, whose BatchNorm and ReLU are separate modules
    fast path       what train.py does here with the 224-px presets (elpv_paper.yaml): channels_last, bf16 where
                    native, tensor input, held memory, fused norm+act (the 96-px main job leaves the kernel off: no
                    gain there); the --torchcompile flag stays off where the compile row shows no gain
    fast + compile  the fast path with torch.compile

Compile time (the first call's extra seconds) is printed beside each compiled row. Goals (issue 12): csba_squeeze
fast path >= 4.0x its eager fp32 train step; csba_squeeze >= 2.5x resnet18 under the same path.
"""
import argparse
import statistics
import time

import timm
import torch
import torch.nn.functional as F

import timm_csba  # noqa: F401
from timm_csba.fused_norm_act import use_fused_norm_act
from timm_csba.cli_args import non_negative_int, positive_int
from timm_csba.runtime import hold_freed_memory, native_bf16
from timm_csba.tensor_input import BatchAugment

MODELS = ('csba_squeeze', 'csba_squeeze_sum', 'resnet18')
# the ELPV preset's augmentation, run on whole batches by the tensor pipeline
AUGMENT = dict(hflip=0.5, vflip=0.5, rot90=True, scale=(0.85, 1.0), ratio=(0.9, 1.1), color_jitter=0.2)


def paths(bf16_ok: bool, with_compile: bool) -> dict:
    """name -> (channels_last, bf16, compile, tensor_input, fused norm+act, held memory)."""
    table = {
        'eager fp32': (False, False, False, False, False, False),
        'channels_last': (True, False, False, False, False, False),
        'bf16': (False, True, False, False, False, False),
        'compile': (False, False, True, False, False, False),
        'tensor input': (False, False, False, True, False, False),
        'fused norm+act': (True, False, False, False, True, False),
        'held memory': (False, False, False, False, False, True),
        'fast path': (True, bf16_ok, False, True, True, True),
        # without the kernel, as train.py runs it under torch.compile (the compiled graph would break at the kernel)
        'fast + compile': (True, bf16_ok, True, True, False, True),
    }
    if not bf16_ok:
        del table['bf16']
    if not with_compile:
        del table['compile'], table['fast + compile']
    return table


def make_steps(name, channels_last, bf16, compile_model, tensor_input, fused, args, change=None):
    """Return (train step, inference step) closures for one model under one path; `change(model)` (optional) edits
    the model in place before it is compiled and given its optimizer."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = timm.create_model(name, num_classes=args.num_classes, in_chans=args.in_chans)
    model = model.to(memory_format=memory_format)
    if fused:
        use_fused_norm_act(model)
    if change is not None:
        change(model)
    if compile_model:
        model.compile(dynamic=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    config = dict(input_size=(args.in_chans, args.img_size, args.img_size), mean=(0.5,) * args.in_chans,
                  std=(0.25,) * args.in_chans)
    augment = BatchAugment(config, **AUGMENT)
    pixels = torch.randint(0, 256, (args.batch_size, args.in_chans, args.img_size, args.img_size), dtype=torch.uint8)
    x = torch.randn(args.batch_size, args.in_chans, args.img_size, args.img_size)
    target = torch.randint(0, args.num_classes, (args.batch_size,))

    def inputs():
        batch = augment(pixels) if tensor_input else x
        return batch.contiguous(memory_format=memory_format)

    def train():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(inputs()), target)
        loss.backward()
        optimizer.step()

    eval_x = x.contiguous(memory_format=memory_format)

    def infer():
        model.eval()
        with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            model(eval_x)

    return train, infer


def first_call_seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved_medians(fns: dict, warmup: int, rounds: int) -> dict:
    """Median seconds per call of each fn, timed round-robin so that drift in machine load hits all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {key: [] for key in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(t) for key, t in times.items()}


def add_step_arguments(parser: argparse.ArgumentParser, rounds: int) -> None:
    """The options of a timed step shared by the benchmarks: threads, batch and input shape, warmup and rounds."""
    parser.add_argument('--threads', type=positive_int, default=torch.get_num_threads(), help='torch CPU threads')
    parser.add_argument('--batch-size', type=positive_int, default=32, help='images per batch')
    parser.add_argument('--img-size', type=positive_int, default=224, help='square input size')
    parser.add_argument('--in-chans', type=positive_int, default=1, help='input channels (ELPV cells: 1)')
    parser.add_argument('--num-classes', type=positive_int, default=4, help='classes (ELPV grades: 4)')
    parser.add_argument('--warmup', type=non_negative_int, default=2, help='untimed calls per step before timing')
    parser.add_argument('--rounds', type=positive_int, default=rounds, help='timed round-robin rounds (median is '
                        'reported)')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_step_arguments(parser, rounds=7)
    parser.add_argument('--no-compile', action='store_true', help='leave out the torch.compile rows')
    parser.add_argument('--models', nargs='+', default=list(MODELS), help='timm model names')
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    bf16_ok = native_bf16(torch.device('cpu'))
    table = paths(bf16_ok, not args.no_compile)
    train, infer, compile_s = {}, {}, {}
    for name in args.models:
        for path, levers in table.items():
            train[name, path], infer[name, path] = make_steps(name, *levers[:5], args)
            if levers[2]:  # compile now, so that compiling is not timed as a step (and is reported)
                compile_s[name, path] = first_call_seconds(train[name, path]) + first_call_seconds(infer[name, path])
    train_s, infer_s = {}, {}
    for hold in (False, True):  # glibc's defaults first: holding cannot be undone in a process
        if hold:
            hold_freed_memory()
        keys = [(name, path) for name, path in train if table[path][5] == hold]
        train_s.update(interleaved_medians({k: train[k] for k in keys}, args.warmup, args.rounds))
        infer_s.update(interleaved_medians({k: infer[k] for k in keys}, args.warmup, args.rounds))

    print(f'cpu threads={args.threads} batch={args.batch_size} size={args.img_size} in_chans={args.in_chans} '
          f'native bf16={bf16_ok} torch={torch.__version__}')
    print(f'{"model":18s} {"path":15s} {"train img/s":>11s} {"vs eager":>8s} {"infer img/s":>11s} {"vs eager":>8s}'
          f' {"compile s":>9s}')
    for name, path in train:
        t, i = args.batch_size / train_s[name, path], args.batch_size / infer_s[name, path]
        t0, i0 = args.batch_size / train_s[name, 'eager fp32'], args.batch_size / infer_s[name, 'eager fp32']
        compiled = f'{compile_s[name, path]:9.1f}' if (name, path) in compile_s else ''
        print(f'{name:18s} {path:15s} {t:11.1f} {t / t0:7.2f}x {i:11.1f} {i / i0:7.2f}x {compiled}')
    if 'resnet18' in args.models and 'csba_squeeze' in args.models:
        for path in table:
            train_ratio = train_s['resnet18', path] / train_s['csba_squeeze', path]
            infer_ratio = infer_s['resnet18', path] / infer_s['csba_squeeze', path]
            print(f'csba_squeeze vs resnet18, {path}: train {train_ratio:.2f}x, inference {infer_ratio:.2f}x')
    if 'csba_squeeze' in args.models:
        print(f'train speedup, fast path vs eager fp32: '
              f'{train_s["csba_squeeze", "eager fp32"] / train_s["csba_squeeze", "fast path"]:.2f}x')
    if 'resnet18' in args.models and 'csba_squeeze' in args.models:
        print(f'csba_squeeze vs resnet18, fast path, train: '
              f'{train_s["resnet18", "fast path"] / train_s["csba_squeeze", "fast path"]:.2f}x')


if __name__ == '__main__':
    main()
