"""Images/s of the real ELPV training input pipeline next to the model's train-step throughput, one run.

    python benchmarks/data_throughput.py --model csba_squeeze --img-size 300 --batch-size 32

The loader (PNG decode + timm train augmentation + collate, DataLoader workers) must deliver at least 1.1x
what a training step consumes, so that input never bounds training. The train step is timed on synthetic
tensors of the same shape, and then again fed by the loader, with the same CPU threads as training uses.
"""
import argparse
import itertools
import time

import timm
import torch
import torch.nn.functional as F

import timm_csba  # noqa: F401
from timm_csba.data import attach_transform, build_dataset, build_transforms, default_num_workers
from timm_csba.cli_args import non_negative_int, positive_int


def images_per_second(batches, count: int) -> float:
    """Pull `count` batches (after one warm-up batch) and return images/s."""
    iterator = iter(batches)
    next(iterator)
    start, images = time.perf_counter(), 0
    for batch in itertools.islice(iterator, count):
        images += len(batch['label'])
    return images / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default='csba_squeeze', help='timm model name')
    parser.add_argument('--img-size', type=positive_int, default=300, help='training image size')
    parser.add_argument('--batch-size', type=positive_int, default=32, help='images per batch')
    parser.add_argument('--num-workers', type=non_negative_int, default=default_num_workers(), help='DataLoader workers')
    parser.add_argument('--batches', type=positive_int, default=8, help='timed batches per measurement')
    parser.add_argument('--threads', type=positive_int, default=torch.get_num_threads(), help='torch threads for training')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = timm.create_model(args.model, num_classes=4, in_chans=1).to(memory_format=torch.channels_last)
    data_config = dict(input_size=(1, args.img_size, args.img_size), mean=model.pretrained_cfg['mean'][:1],
                       std=model.pretrained_cfg['std'][:1], interpolation='bilinear', crop_pct=1.0)
    transform = build_transforms(data_config, is_training=True, hflip=0.5, vflip=0.5, scale=(0.8, 1.0))
    train = attach_transform(build_dataset('elpv')['train'], transform)
    loader = torch.utils.data.DataLoader(train, batch_size=args.batch_size, shuffle=True, drop_last=True,
                                         num_workers=args.num_workers, persistent_workers=args.num_workers > 0)
    loader_ips = images_per_second(loader, args.batches)

    optimizer = torch.optim.Adam(model.parameters())

    def train_on(batches):
        for batch in batches:
            x = batch['pixel_values'].contiguous(memory_format=torch.channels_last)
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), batch['label']).backward()
            optimizer.step()
            yield batch

    synthetic = itertools.repeat(dict(pixel_values=torch.randn(args.batch_size, 1, args.img_size, args.img_size),
                                      label=torch.randint(0, 4, (args.batch_size,))))
    train_ips = images_per_second(train_on(synthetic), args.batches)
    fed_ips = images_per_second(train_on(itertools.cycle(loader)), args.batches)

    print(f'{args.model} {args.img_size}px batch {args.batch_size}, {args.num_workers} workers, '
          f'{args.threads} torch threads')
    print(f'loader alone:              {loader_ips:8.1f} img/s')
    print(f'train step, synthetic:     {train_ips:8.1f} img/s')
    print(f'train step, fed by loader: {fed_ips:8.1f} img/s')
    print(f'loader / train ratio: {loader_ips / train_ips:.2f}x (goal >= 1.1); '
          f'slow-down when fed by the loader: {train_ips / fed_ips:.3f}x')


if __name__ == '__main__':
    main()
