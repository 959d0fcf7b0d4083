"""Rendering speed of the formula-driven fractals against the train step that consumes them, one run.

    python benchmarks/fractal_render.py --img-size 64 --batch-size 64 --threads 1

Rendering inside the input pipeline would take a core from training for as long as it trains, and cost nothing
only where rendering outpaces the step on a core of its own; rendered once into the HF datasets cache (what the
`fractals` dataset does), the images cost one pass of rendering and then nothing: the tensor input pipeline reads
them as uint8 pixels. The script prints both rates and their ratio, measured side by side (round-robin), with the
same threads, and what the one-off rendering costs against one epoch of training on the same images.
"""
import argparse
import time

import numpy as np
import torch

import timm_csba  # noqa: F401
from speed import add_step_arguments, interleaved_medians, make_steps
from timm_csba.data.fractals import category_system, instance_system, render
from timm_csba.runtime import hold_freed_memory, native_bf16


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_step_arguments(parser, rounds=7)
    parser.add_argument('--model', default='csba_squeeze', help='timm model name')
    parser.set_defaults(img_size=64, batch_size=64, in_chans=3, num_classes=1000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    systems = [category_system(0, c) for c in range(args.batch_size)]  # once per category, kept by the dataset
    choose_s = (time.perf_counter() - start) / args.batch_size
    rng = np.random.default_rng(0)

    def render_batch():
        for system in systems:
            render(instance_system(system, rng), args.img_size, rng)

    hold_freed_memory()
    train, _ = make_steps(args.model, True, native_bf16(torch.device('cpu')), False, True, False, args)
    seconds = interleaved_medians({'render': render_batch, 'train': train}, args.warmup, args.rounds)
    render_rate, train_rate = args.batch_size / seconds['render'], args.batch_size / seconds['train']
    print(f'threads={args.threads} size={args.img_size} batch={args.batch_size} model={args.model} '
          f'torch={torch.__version__}')
    print(f'render (one core, numpy): {render_rate:8.1f} img/s; choosing a category\'s system: {choose_s * 1e3:.1f} ms')
    print(f'train step (fast path):   {train_rate:8.1f} img/s')
    print(f'render / train: {render_rate / train_rate:.2f}x; rendering once costs {train_rate / render_rate:.2f} of '
          f'one epoch, then nothing')


if __name__ == '__main__':
    main()
