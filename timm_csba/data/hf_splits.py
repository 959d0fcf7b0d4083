"""What acts on a whole HF split: the on-the-fly transform of the generic input path, and decoding every image once
before training so that a bad file stops the run at the start, by name."""
from typing import Callable, Dict, Tuple

import datasets
from datasets import DatasetDict, Image

from .errors import DatasetError
from .images import decode_image


def attach_transform(split: datasets.Dataset, transform: Callable) -> datasets.Dataset:
    """Return the split with an on-the-fly transform giving {'pixel_values', 'label'}; bad images name their file."""
    raw = split.cast_column('image', Image(decode=False))

    def apply(batch: Dict[str, list]) -> Dict[str, list]:
        return {
            'pixel_values': [transform(decode_image(value)) for value in batch['image']],
            'label': batch['label'],
        }

    return raw.with_transform(apply, columns=['image', 'label'])


def find_corrupt_images(split: datasets.Dataset) -> Dict[int, str]:
    """Return {index: error message} for every image in the split that cannot be decoded."""
    raw = split.cast_column('image', Image(decode=False))
    errors = {}
    for index, value in enumerate(raw['image']):
        try:
            decode_image(value)
        except DatasetError as e:
            errors[index] = str(e)
    return errors


def check_images(dataset: DatasetDict, skip_corrupt: bool = False) -> Tuple[DatasetDict, int]:
    """Decode every image once, before training; return (dataset, images skipped).

    An undecodable image raises one DatasetError that lists them all (up to 5 by name), unless `skip_corrupt`,
    which drops them from their splits instead.
    """
    errors = {name: find_corrupt_images(split) for name, split in dataset.items()}
    found = [message for split_errors in errors.values() for message in split_errors.values()]
    if found and not skip_corrupt:
        listed = '; '.join(message.split(': ', 1)[0].removeprefix('Cannot decode image ') for message in found[:5])
        raise DatasetError(f'{len(found)} image(s) cannot be decoded ({listed}{", ..." if len(found) > 5 else ""}). '
                           f'Remove or replace them, or pass --skip-corrupt to train without them.')
    kept = DatasetDict({name: split.select([i for i in range(len(split)) if i not in errors[name]])
                        if errors[name] else split for name, split in dataset.items()})
    return kept, len(found)
