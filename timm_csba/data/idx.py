"""IDX files, the format of MNIST and Fashion-MNIST (gzipped or not): a magic number naming the element type and the
number of dimensions, the dimensions, then the values. Read into numpy with every way a file can be wrong named."""
import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from .errors import DatasetError

__all__ = ['read_idx']

UNSIGNED_BYTE = 0x08


def read_idx(path: Path, dims: int) -> np.ndarray:
    """The uint8 array of an IDX file with `dims` dimensions (3 for images, 1 for labels)."""
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if raw[:2] == b'\x1f\x8b' else raw
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f'{path} cannot be read ({e}): the download is truncated or corrupt; fetch it again') \
            from None
    if len(data) < 4 or data[:2] != b'\x00\x00':
        raise DatasetError(f'{path} is not an IDX file (no IDX magic number); pass the folder of the original '
                           f'train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-... files')
    kind, found = data[2], data[3]
    if kind != UNSIGNED_BYTE or found != dims:
        what = {1: 'labels', 3: 'images'}
        raise DatasetError(f'{path} holds {what.get(found, f"{found}-dimensional data")} of type 0x{kind:02x}; '
                           f'expected {what[dims]} (unsigned bytes, {dims} dimension(s)): check which file is which')
    header = 4 + 4 * dims
    shape = struct.unpack(f'>{dims}I', data[4:header]) if len(data) >= header else None
    if shape is None or len(data) - header != int(np.prod(shape)):
        raise DatasetError(f'{path} is truncated: its header promises {shape} values but '
                           f'{max(len(data) - header, 0)} bytes follow; fetch it again')
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
