"""Inference speed where a model is deployed: batch-1 latency and batch-64 throughput at the published 96 px of
csba_squeeze, csba_squeeze_sum and, as peers, timm's resnet18 and mobilenetv3_small_100, under three paths, timed
round-robin in one run (every model and path measured in turn, repeat after repeat) and printed as ratios.

    python benchmarks/deploy.py                 # all cores, 4 classes, 3 input channels (the published weights)
    python benchmarks/deploy.py --repeats 3     # a quicker, noisier look

Paths (each model runs every path; the weights are random: speed does not depend on them):
    eager fp32     PyTorch, NCHW, fp32, inference_mode: what `create_model` then `model(x)` gives
    fast           the project's fast inference path: channels_last, bf16 autocast where the CPU runs bf16
                   natively, the fused BatchNorm + activation eval kernel on timm's BatchNormAct2d layers with a
                   ReLU-family activation (all of the csba models', some of mobilenetv3's, none in resnet18)
    onnxruntime    the model exported by timm_csba's ONNX export (timm's exporter), run by ONNX Runtime on CPU in
                   fp32 with its default graph optimisations and threads (the [onnx] extra)

The latency is the median of single-image calls; the throughput is images per second of batch-64 calls, median
over the repeats. Report a run in benchmarks/README.md with the machine and the date.
"""
import argparse
import os
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import onnxruntime
import timm
import torch

import timm_csba  # noqa: F401  (registers csba_*)
from timm_csba.cli_args import positive_int
from timm_csba.fused_norm_act import FusedNormActError, use_fused_norm_act
from timm_csba.onnx_export import export_onnx
from timm_csba.onnx_model import INPUT, LOGITS
from timm_csba.runtime import native_bf16

MODELS = ('csba_squeeze', 'csba_squeeze_sum', 'resnet18', 'mobilenetv3_small_100')
PATHS = ('eager fp32', 'fast', 'onnxruntime')
BATCH = 64


def torch_runner(name: str, fast: bool, size: int):
    """A function batch -> logits for `name` under the eager or the fast path, and what the fast path used."""
    model = timm.create_model(name, num_classes=4, in_chans=3).eval()
    used = []
    if fast:
        model = model.to(memory_format=torch.channels_last)
        used.append('channels_last')
        try:
            if use_fused_norm_act(model):
                used.append('fused norm+act')
        except FusedNormActError as e:
            print(f'{name}: fused norm+act unavailable ({e}); timed without it')
    bf16 = fast and native_bf16(torch.device('cpu'))
    if bf16:
        used.append('bf16')
    memory_format = torch.channels_last if fast else torch.contiguous_format

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast('cpu', torch.bfloat16) if bf16 else nullcontext():
            return model(x.contiguous(memory_format=memory_format))
    return run, used


def onnx_runner(name: str, size: int, folder: Path):
    model = timm.create_model(name, num_classes=4, in_chans=3).eval()
    path = folder / f'{name}.onnx'
    export_onnx(model, path, (3, size, size))
    session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])

    def run(x: torch.Tensor):
        return session.run([LOGITS], {INPUT: x.numpy()})[0]
    return run, ['fp32']


def time_calls(run, x: torch.Tensor, calls: int) -> float:
    """Seconds per call, over `calls` calls after one warm-up."""
    run(x)
    start = time.perf_counter()
    for _ in range(calls):
        run(x)
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--img-size', type=positive_int, default=96)
    parser.add_argument('--repeats', type=positive_int, default=7, help='round-robin rounds (medians over them)')
    parser.add_argument('--latency-calls', type=positive_int, default=50, help='batch-1 calls per round')
    parser.add_argument('--throughput-calls', type=positive_int, default=5, help='batch-64 calls per round')
    args = parser.parse_args()
    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    print(f'torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {threads} threads, '
          f'bf16 native: {native_bf16(torch.device("cpu"))}, {args.img_size} px')

    one, batch = torch.randn(1, 3, args.img_size, args.img_size), torch.randn(BATCH, 3, args.img_size, args.img_size)
    with tempfile.TemporaryDirectory() as tmp:
        runners = {}
        for name in MODELS:
            runners[name, 'eager fp32'] = torch_runner(name, False, args.img_size)
            runners[name, 'fast'] = torch_runner(name, True, args.img_size)
            runners[name, 'onnxruntime'] = onnx_runner(name, args.img_size, Path(tmp))
        latency = {key: [] for key in runners}
        throughput = {key: [] for key in runners}
        for _ in range(args.repeats):  # round-robin: a slow spell of the machine hits every row alike
            for key, (run, _) in runners.items():
                latency[key].append(time_calls(run, one, args.latency_calls))
                throughput[key].append(BATCH / time_calls(run, batch, args.throughput_calls))

    print(f'\n| model | path | what it uses | batch 1 latency ms | x eager | batch {BATCH} img/s | x eager |')
    print('|---|---|---|---|---|---|---|')
    for (name, path), (_, used) in runners.items():
        ms = 1000 * statistics.median(latency[name, path])
        ips = statistics.median(throughput[name, path])
        base_ms = 1000 * statistics.median(latency[name, 'eager fp32'])
        base_ips = statistics.median(throughput[name, 'eager fp32'])
        print(f'| {name} | {path} | {", ".join(used) or "-"} | {ms:.2f} | {base_ms / ms:.2f} | {ips:.0f} | '
              f'{ips / base_ips:.2f} |')
    print('\nfastest path per model (batch 1 by latency, batch 64 by throughput):')
    for name in MODELS:
        b1 = min(PATHS, key=lambda p: statistics.median(latency[name, p]))
        b64 = max(PATHS, key=lambda p: statistics.median(throughput[name, p]))
        print(f'  {name}: batch 1 {b1}, batch {BATCH} {b64}')
    print('\ncsba_squeeze against the peers under the same path (throughput ratio at batch 64; >1: csba faster):')
    for path in PATHS:
        ours = statistics.median(throughput['csba_squeeze', path])
        peers = ', '.join(f'{ours / statistics.median(throughput[peer, path]):.2f}x {peer}' for peer in MODELS[2:])
        print(f'  {path}: {peers}')


if __name__ == '__main__':
    main()
