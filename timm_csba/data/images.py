"""Image decoding that names the file it cannot read, and a check of every image before training starts."""
import io
from typing import Any, Dict, Tuple

import datasets
from datasets import DatasetDict, Image
from PIL import Image as PILImage

from .errors import DatasetError


def decode_image(value: Any) -> PILImage.Image:
    """Return a fully loaded PIL image from a datasets.Image value (decoded or {'path', 'bytes'})."""
    if isinstance(value, PILImage.Image):
        return value
    source = value.get('path') or '<in-memory image>'
    try:
        image = PILImage.open(io.BytesIO(value['bytes']) if value.get('bytes') else value['path'])
        image.load()  # truncated files fail here, not later inside a transform
    except (OSError, ValueError, SyntaxError) as e:
        raise DatasetError(f'Cannot decode image {source}: {e}. Remove or replace the file.') from None
    return image


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
