"""Cost of the Gradient Conflict Matrix over the whole ELPV train split next to one training epoch, one run.

    python benchmarks/diagnostics_speed.py --model csba_squeeze --img-size 224

Goal (issue 6): the GCM costs at most 1.5x one training epoch of the same model on the same data. Both use the
same decoded + transformed images, batch size and threads; the epoch is forward + backward + Adam step in train
mode, the GCM one backward per single-class batch in eval mode with gradients of every parameter kept per class.
"""
import argparse
import time

import timm
import torch
import torch.nn.functional as F

import timm_csba  # noqa: F401
from timm_csba.data import attach_transform, build_dataset, build_transforms, class_weights, default_num_workers
from timm_csba.diagnostics import analyze
from timm_csba.cli_args import non_negative_int, positive_int


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default='csba_squeeze', help='timm model name')
    parser.add_argument('--img-size', type=positive_int, default=224, help='image size')
    parser.add_argument('--batch-size', type=positive_int, default=32, help='batch size of both')
    parser.add_argument('--limit', type=positive_int, help='use only this many train images (quick look)')
    parser.add_argument('--num-workers', type=non_negative_int, default=default_num_workers(), help='DataLoader workers')
    args = parser.parse_args()

    split = build_dataset('elpv')['train']
    if args.limit:
        split = split.shuffle(seed=0).select(range(args.limit))
    names = split.features['label'].names
    model = timm.create_model(args.model, num_classes=len(names), in_chans=1)
    config = dict(input_size=(1, args.img_size, args.img_size), mean=(0.597,), std=(0.161,))
    data = attach_transform(split, build_transforms(config, is_training=False))
    criterion = torch.nn.CrossEntropyLoss(weight=class_weights(split))

    optimizer = torch.optim.Adam(model.parameters())
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch_size, shuffle=True, num_workers=args.num_workers)
    model.train()
    start = time.perf_counter()
    for batch in loader:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(batch['pixel_values']), batch['label'], weight=criterion.weight).backward()
        optimizer.step()
    epoch_s = time.perf_counter() - start

    start = time.perf_counter()
    result = analyze(model, data, split['label'], names, criterion, params='backbone', batch_size=args.batch_size,
                     num_workers=args.num_workers)
    gcm_s = time.perf_counter() - start

    print(f'{args.model} {args.img_size}px, {len(split)} ELPV train images, batch {args.batch_size}, '
          f'{torch.get_num_threads()} threads, {args.num_workers} workers')
    print(f'one training epoch: {epoch_s:7.1f} s')
    print(f'GCM (all classes):  {gcm_s:7.1f} s   mean off-diagonal cosine '
          f'{result["parameter_sets"]["backbone"]["summary"]["cosine"]["mean_off_diagonal"]:.3f}')
    print(f'GCM / epoch: {gcm_s / epoch_s:.2f}x (goal <= 1.5)')


if __name__ == '__main__':
    main()
