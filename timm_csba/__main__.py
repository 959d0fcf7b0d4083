"""`python -m timm_csba`: list the registered csba_* models with their parameters and GMACs."""
import argparse

import timm

from .cli_args import positive_int
from .models import count_gmacs  # importing the package registers the models


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
