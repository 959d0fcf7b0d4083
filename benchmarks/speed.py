"""Forward and train-step throughput of every csba_* variant next to timm resnet18 and torchvision
squeezenet1_1, measured in one run and printed as ratios.

    python benchmarks/speed.py --threads 2 --batch-size 32 --img-size 224

Goals (issue 3): csba_squeeze forward latency <= 1.05x csba_squeeze_sum, train step <= 1.08x,
and csba_squeeze train img/s >= 2.5x resnet18.
"""
import argparse
import statistics
import time

import timm
import torch
import torch.nn.functional as F
import torchvision

import timm_csba  # noqa: F401


def create(name: str, num_classes: int) -> torch.nn.Module:
    if name == 'tv_squeezenet1_1':
        return torchvision.models.squeezenet1_1(num_classes=num_classes)
    return timm.create_model(name, num_classes=num_classes)


def interleaved_medians(fns: dict, warmup: int, rounds: int) -> dict:
    """Median seconds per call of each fn, timed round-robin so that drift in machine load hits all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def make_steps(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, autocast_dtype=None) -> tuple:
    """Return (inference step, train step) closures for `model` on batch `x`."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    autocast = torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None)

    def infer():
        model.eval()
        with torch.inference_mode(), autocast:
            model(x)

    def train_step():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = F.cross_entropy(model(x), target)
        loss.backward()
        optimizer.step()

    return infer, train_step


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads(), help='torch CPU threads')
    parser.add_argument('--batch-size', type=int, default=32, help='images per batch')
    parser.add_argument('--img-size', type=int, default=224, help='square input size')
    parser.add_argument('--in-chans', type=int, default=3, help='input channels')
    parser.add_argument('--num-classes', type=int, default=6, help='classes (the paper uses 6)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed iterations per model before timing')
    parser.add_argument('--rounds', type=int, default=7, help='timed round-robin rounds (median is reported)')
    parser.add_argument('--channels-last', action='store_true', help='run models and inputs in channels_last')
    parser.add_argument('--device', default='cpu', help='torch device (cpu, cuda)')
    parser.add_argument('--autocast', choices=['bfloat16', 'float16'], help='run under torch.autocast in this dtype')
    parser.add_argument('--models', nargs='+', help='models to compare (default: all csba_* + baselines)')
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    names = args.models or timm.list_models('csba_*') + ['resnet18', 'tv_squeezenet1_1']
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    x = torch.randn(args.batch_size, args.in_chans, args.img_size, args.img_size, device=args.device)
    x = x.contiguous(memory_format=memory_format)
    target = torch.randint(0, args.num_classes, (args.batch_size,), device=args.device)

    steps = {}
    for name in names:
        model = create(name, args.num_classes).to(args.device, memory_format=memory_format)
        steps[name] = make_steps(model, x, target, getattr(torch, args.autocast) if args.autocast else None)
    infer_s = interleaved_medians({n: s[0] for n, s in steps.items()}, args.warmup, args.rounds)
    train_s = interleaved_medians({n: s[1] for n, s in steps.items()}, args.warmup, args.rounds)
    results = {n: (args.batch_size / infer_s[n], args.batch_size / train_s[n]) for n in names}

    print(f'device={args.device} threads={args.threads} batch={args.batch_size} size={args.img_size} '
          f'channels_last={args.channels_last} autocast={args.autocast}')
    print(f'{"model":24s} {"infer img/s":>12s} {"train img/s":>12s}')
    for name, (infer, train) in results.items():
        print(f'{name:24s} {infer:12.1f} {train:12.1f}')

    if {'csba_squeeze', 'csba_squeeze_sum'} <= results.keys():
        csba, base = results['csba_squeeze'], results['csba_squeeze_sum']
        print(f'csba_squeeze / csba_squeeze_sum latency: forward {base[0] / csba[0]:.3f}x (goal <= 1.05), '
              f'train step {base[1] / csba[1]:.3f}x (goal <= 1.08)')
    if {'csba_squeeze', 'resnet18'} <= results.keys():
        print(f'csba_squeeze / resnet18 throughput: forward {results["csba_squeeze"][0] / results["resnet18"][0]:.2f}x, '
              f'train {results["csba_squeeze"][1] / results["resnet18"][1]:.2f}x (goal >= 2.5)')


if __name__ == '__main__':
    main()
