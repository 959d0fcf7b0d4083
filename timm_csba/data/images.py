"""Image decoding that names the file it cannot read (core install: PIL only, no `datasets`)."""
import io
from typing import Any

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
