"""How much faster the csba_squeeze fast path could get if one kind of layer cost nothing: upper bounds on what any
exact kernel for that layer could gain, timed side by side (round-robin) in one run, with resnet18 for issue 12's
ratio.

    python benchmarks/layer_bounds.py               # 224 px, batch 32, 1 input channel, all cores

Rows (the "no ..." rows are not models: each changes the function, and only bounds what a faster kernel could gain):
    fast path       channels_last, bf16 autocast where native, held memory, fused norm+act (as benchmarks/speed.py,
                    without its tensor-input augmentation: the same input tensor for every row)
    no max pool     each stage's 3x3 / 2 max pool replaced by taking every second row and column (the same shapes)
    no norm+act     every BatchNormAct2d (BatchNorm + LeakyReLU) replaced by the identity
    resnet18        timm's resnet18 under the fast path
"""
import argparse

import torch
import torch.nn as nn
from timm.layers import BatchNormAct2d

from timm_csba.runtime import hold_freed_memory, native_bf16

from speed import add_step_arguments, interleaved_medians, make_steps


class EverySecondPixel(nn.Module):
    """Stands in for a 3x3 / 2 max pool at no cost: the same output shape for even input sizes, no reduction."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, ::2, ::2].contiguous(memory_format=torch.channels_last)


def without_max_pool(model: nn.Module) -> None:
    for stage in model.stages:
        if isinstance(stage[0], nn.MaxPool2d):
            stage[0] = EverySecondPixel()


def without_norm_act(model: nn.Module) -> None:
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, BatchNormAct2d):
                setattr(parent, name, nn.Identity())


ROWS = {
    'fast path': ('csba_squeeze', None),
    'no max pool': ('csba_squeeze', without_max_pool),
    'no norm+act': ('csba_squeeze', without_norm_act),
    'resnet18': ('resnet18', None),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_step_arguments(parser, rounds=9)
    args = parser.parse_args()
    if args.img_size % 2:
        parser.error(f'--img-size {args.img_size}: use an even size, so that the max-pool stand-in keeps the shapes')

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    hold_freed_memory()
    bf16 = native_bf16(torch.device('cpu'))
    # the fast path without tensor input (one input tensor for every row), with the row's change
    steps = {row: make_steps(name, True, bf16, False, False, True, args, change=change)
             for row, (name, change) in ROWS.items()}
    train_s = interleaved_medians({row: s[0] for row, s in steps.items()}, args.warmup, args.rounds)
    infer_s = interleaved_medians({row: s[1] for row, s in steps.items()}, args.warmup, args.rounds)

    print(f'cpu threads={args.threads} batch={args.batch_size} size={args.img_size} in_chans={args.in_chans} '
          f'bf16={bf16} torch={torch.__version__}')
    print(f'{"row":12s} {"train img/s":>11s} {"vs resnet18":>11s} {"infer img/s":>11s} {"vs resnet18":>11s}')
    for row in ROWS:
        print(f'{row:12s} {args.batch_size / train_s[row]:11.1f} {train_s["resnet18"] / train_s[row]:10.2f}x '
              f'{args.batch_size / infer_s[row]:11.1f} {infer_s["resnet18"] / infer_s[row]:10.2f}x')


if __name__ == '__main__':
    main()
