"""Image decoding that names the file it cannot read, and the 8-bit view of 12-, 14- and 16-bit images (core install:
PIL and numpy only, no `datasets`).

EL cameras record 12 to 16 bits; the models see 8-bit cells (ELPV's). An image is mapped onto 8 bits by the bit depth
it was recorded at: the PNG's sBIT chunk where it says, else the smallest of 12, 14 or 16 bits that holds its largest
value. So a cell saved at 8 bits, scaled into a 12-bit range or into the full 16-bit range is the same 8-bit picture
(to rounding), where dividing by 257 would leave a 12-bit image nearly black.
"""
import io
import struct
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from PIL import Image as PILImage

from .errors import DatasetError

__all__ = ['BIT_DEPTHS', 'CONTRASTS', 'UndecodableImage', 'decode_image', 'significant_bits', 'to_8bit']

BIT_DEPTHS = (12, 14, 16)
INTEGER_MODES = ('I;16', 'I;16B', 'I;16L', 'I')
# contrast normalisation for images far from ELPV's exposure: none, or the 1st..99th percentile stretched to 0..255
CONTRASTS = ('none', 'percentile')
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


class UndecodableImage(DatasetError):
    """An image file that cannot be decoded; `reason` is the decoder's own word. Built from its message alone too,
    as a DataLoader worker's exception is raised again in the main process."""

    def __init__(self, message: str, name: str = '', reason: str = ''):
        super().__init__(message)
        self.name, self.reason = name, reason


def significant_bits(data: bytes) -> Optional[int]:
    """The bit depth a PNG says its gray samples were recorded at (its sBIT chunk), or None where it does not say."""
    if not data.startswith(PNG_SIGNATURE):
        return None
    offset = len(PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack('>I4s', data[offset:offset + 8])
        if kind == b'sBIT' and length >= 1:
            return data[offset + 8]
        if kind in (b'IDAT', b'IEND'):  # sBIT comes before the image data or not at all
            return None
        offset += 12 + length
    return None


def _stretch(pixels: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip((pixels - low) / (high - low), 0, 1) * 255 if high > low else np.zeros_like(pixels)


def to_8bit(image: PILImage.Image, recorded_bits: Optional[int] = None, contrast: str = 'none') -> PILImage.Image:
    """The 8-bit view of an image the models take: integer gray images by the bit depth they were recorded at
    (`recorded_bits`, else the smallest of BIT_DEPTHS that holds the largest value), float images stretched from
    their minimum to their maximum, 8-bit images as they are; then `contrast` (CONTRASTS)."""
    if contrast not in CONTRASTS:
        raise ValueError(f'unknown contrast {contrast!r}; use one of {", ".join(CONTRASTS)}')
    if image.mode in INTEGER_MODES:
        pixels = np.asarray(image, dtype=np.float64)
        largest = float(pixels.max(initial=0))
        bits = recorded_bits or next((b for b in BIT_DEPTHS if largest < 2 ** b), int(np.ceil(np.log2(largest + 1))))
        pixels = _stretch(pixels, 0, 2 ** bits - 1)
    elif image.mode == 'F':
        pixels = np.asarray(image, dtype=np.float64)
        pixels = _stretch(pixels, float(pixels.min()), float(pixels.max()))
    elif contrast == 'none':
        return image
    else:
        pixels = np.asarray(image.convert('L'), dtype=np.float64)
    if contrast == 'percentile':
        pixels = _stretch(pixels, *np.percentile(pixels, (1, 99)))
    return PILImage.fromarray(np.round(pixels).astype(np.uint8), mode='L')


def decode_image(value: Any, contrast: str = 'none') -> PILImage.Image:
    """Return a fully loaded PIL image, in 8 bits (`to_8bit`), from a file path, bytes, a PIL image or a
    datasets.Image value (decoded or {'path', 'bytes'})."""
    if isinstance(value, PILImage.Image):
        return to_8bit(value, contrast=contrast)
    if isinstance(value, dict):
        source: Union[str, bytes] = value.get('bytes') or value.get('path')
        name = value.get('path') or '<in-memory image>'
    else:
        source, name = value, str(value)
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        image = PILImage.open(io.BytesIO(data))
        image.load()  # truncated files fail here, not later inside a transform
    except PILImage.UnidentifiedImageError:  # its own message names the in-memory buffer, not the file
        reason = 'no image format PIL reads (PNG, TIFF, JPEG, BMP, WebP) is in it'
        raise UndecodableImage(f'Cannot decode image {name}: {reason}. Remove or replace the file.', name,
                               reason) from None
    except (OSError, ValueError, SyntaxError, TypeError) as e:
        raise UndecodableImage(f'Cannot decode image {name}: {e}. Remove or replace the file.', name, str(e)) from None
    return to_8bit(image, significant_bits(data) if image.mode in INTEGER_MODES else None, contrast)
