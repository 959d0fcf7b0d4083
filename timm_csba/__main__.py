"""`python -m timm_csba`: list the registered csba_* models with their parameters and GMACs."""
import argparse

import timm
import torch
from torch.utils.flop_counter import FlopCounterMode

import timm_csba  # noqa: F401  (registers the models)
from timm_csba.runs import positive_int


def count_gmacs(model: torch.nn.Module, input_size: tuple) -> float:
    """Return the multiply-accumulates (in G) of one forward pass on a single image of `input_size`."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(torch.zeros(1, *input_size))
    return counter.get_total_flops() / 2e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--num-classes', type=positive_int, default=6, help='classes of the head (the paper uses 6)')
    parser.add_argument('--in-chans', type=positive_int, default=3, help='input channels')
    parser.add_argument('--img-size', type=positive_int, default=224, help='square input size for the GMACs')
    args = parser.parse_args()

    print(f'{"model":24s} {"params":>10s} {"GMACs":>7s}   ({args.num_classes} classes, '
          f'{args.in_chans}x{args.img_size}x{args.img_size})')
    for name in timm.list_models('csba_*'):
        model = timm.create_model(name, num_classes=args.num_classes, in_chans=args.in_chans)
        params = sum(p.numel() for p in model.parameters())
        gmacs = count_gmacs(model, (args.in_chans, args.img_size, args.img_size))
        print(f'{name:24s} {params:10,d} {gmacs:7.3f}')
    print(f'pretrained tags: {", ".join(timm.list_pretrained("csba_*"))}')


if __name__ == '__main__':
    main()
