"""Whole EL modules: find the module in an electroluminescence image, correct its perspective and cut its cells.

An EL module glows on a dark background, its cells parted by dark gaps. `find_module` thresholds the image (Otsu),
closes the gaps, keeps the largest bright region with its holes filled (a dead cell is dark too) and fits a line to
each of its four edges; their intersections are the corners, to a fraction of a pixel. `rectify` maps the
quadrilateral onto an upright rectangle by the homography of the four corners; `find_grid` counts rows and columns
from the dark gaps; `cell_boxes` divides it into its grid between the gaps, and `sample_cell` samples each cell
straight from the image (one resampling). `compose_module` goes the other way and
builds a module from cells (tiled with gaps, rotated, perspective-warped, at 8, 12 or 16 bits) with its geometry
known, for the tests, the benchmark and the example module.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from scipy import ndimage

__all__ = ['ModuleError', 'find_module', 'check_corners', 'homography', 'rectify', 'find_grid', 'parse_grid',
           'cell_boxes', 'sample_cell', 'ComposedModule', 'compose_module']

CORNERS = ('top-left', 'top-right', 'bottom-right', 'bottom-left')
WORK_SIZE = 640


class ModuleError(ValueError):
    """An image, grid or corner set that does not give a module; the message names the fix."""


def _otsu(pixels: np.ndarray) -> float:
    """Otsu's threshold of values in [0, 1]."""
    counts, edges = np.histogram(pixels, bins=256, range=(0.0, 1.0))
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)
    mean = np.cumsum(counts * centres)
    total, total_mean = weight[-1], mean[-1]
    between = (total_mean * weight / total - mean) ** 2 / np.maximum(weight * (total - weight), 1)
    return float(centres[np.argmax(between)])


def _closed(mask: np.ndarray, reach: int) -> np.ndarray:
    """The mask with gaps narrower than `reach` pixels closed (a dilation, then an erosion; separable filters)."""
    return ndimage.minimum_filter(ndimage.maximum_filter(mask, reach, mode='constant'), reach, mode='constant')


def _fit_line(along: np.ndarray, across: np.ndarray) -> Tuple[float, float]:
    """(slope, intercept) of across = slope * along + intercept: the Theil-Sen line (robust to a dark cell biting
    into the edge, up to 29 % of it), then least squares on the points within 2 pixels of it."""
    step = max(1, len(along) // 150)
    a, b = along[::step], across[::step]
    i, j = np.triu_indices(len(a), 1)
    slope = np.median((b[j] - b[i]) / (a[j] - a[i]))
    intercept = np.median(across - slope * along)
    keep = np.abs(across - (slope * along + intercept)) <= 2
    return tuple(np.polyfit(along[keep], across[keep], 1)) if keep.sum() >= 2 else (slope, intercept)


def _edge(mask: np.ndarray, side: str, start: float, stop: float) -> Tuple[float, float]:
    """The line of one side of the region in `mask`, fitted over the middle 80 % of its extent [start, stop]."""
    lines = np.arange(int(start + 0.1 * (stop - start)), int(stop - 0.1 * (stop - start)) + 1)
    seen = mask[:, lines] if side in ('top', 'bottom') else mask[lines, :].T
    lines = lines[seen.any(0)]
    seen = seen[:, seen.any(0)]
    if len(lines) < 2:
        raise ModuleError('the module\'s edges could not be traced; pass its --corners')
    first = np.argmax(seen, 0).astype(float)
    last = seen.shape[0] - 1 - np.argmax(seen[::-1], 0).astype(float)
    # PIL's pixel k spans [k, k + 1): the module starts at its first bright pixel and ends after its last
    boundary = first if side in ('top', 'left') else last + 1
    return _fit_line(lines.astype(float), boundary)


def _intersect(horizontal: Tuple[float, float], vertical: Tuple[float, float]) -> Tuple[float, float]:
    """(x, y) where y = a x + b meets x = c y + d."""
    (a, b), (c, d) = horizontal, vertical
    y = (a * d + b) / (1 - a * c)
    return c * y + d, y


def find_module(gray: np.ndarray) -> np.ndarray:
    """The module's corners in `gray` (an 8-bit or float image), (4, 2) as (x, y): top-left, top-right,
    bottom-right, bottom-left. ModuleError where the image holds no module (all dark, all bright, or no bright
    region that stands out)."""
    pixels = np.asarray(gray, dtype=np.float64)
    # found on a copy at most WORK_SIZE pixels wide (block means): the edges' fitted lines keep sub-pixel precision
    scale = max(1, int(np.ceil(max(pixels.shape) / WORK_SIZE)))
    height, width = (pixels.shape[0] // scale) * scale, (pixels.shape[1] // scale) * scale
    pixels = pixels[:height, :width].reshape(height // scale, scale, width // scale, scale).mean((1, 3))
    low, high = np.percentile(pixels, (1, 99))
    if high - low < 8 * (255 if pixels.max() > 1 else 1) / 255:
        level = 'dark' if high < (128 if pixels.max() > 1 else 0.5) else 'bright'
        raise ModuleError(f'no module found: the image is all {level} (an EL module glows on a dark background); '
                          f'pass its --corners if it is there')
    pixels = np.clip((pixels - low) / (high - low), 0, 1)
    # wider than a gap with the dark borders of the cells beside it, narrower than a cell (a module is at least a
    # few cells across and fills a good part of the image); odd, so that the filters stay centred
    reach = max(3, max(pixels.shape) // 40) | 1
    bright = _closed(pixels > _otsu(pixels), reach)
    labels, count = ndimage.label(bright)
    if count == 0:
        raise ModuleError('no module found: nothing stands out from the background; pass its --corners')
    region = labels == 1 + np.argmax(ndimage.sum_labels(bright, labels, range(1, count + 1)))
    region = ndimage.binary_fill_holes(region)
    # the edges at a quarter of the way from the background up to the cells: a cell darkens towards its border, and
    # the midway threshold would put the edges a few pixels inside the module
    background, cells = np.median(pixels[~region]), np.median(pixels[region])
    near = ndimage.maximum_filter(region, reach)
    region = ndimage.binary_fill_holes(_closed(near & (pixels > background + 0.25 * (cells - background)), reach))
    if region.mean() < 0.02 or region.mean() > 0.98:
        raise ModuleError(f'no module found: the brightest region covers {region.mean():.0%} of the image; '
                          f'pass its --corners')
    ys, xs = np.nonzero(region)
    top_left, bottom_right = np.argmin(xs + ys), np.argmax(xs + ys)
    top_right, bottom_left = np.argmax(xs - ys), np.argmin(xs - ys)
    rough = np.array([(xs[i], ys[i]) for i in (top_left, top_right, bottom_right, bottom_left)], dtype=float)
    top = _edge(region, 'top', rough[0, 0], rough[1, 0])
    bottom = _edge(region, 'bottom', rough[3, 0], rough[2, 0])
    left = _edge(region, 'left', rough[0, 1], rough[3, 1])
    right = _edge(region, 'right', rough[1, 1], rough[2, 1])
    coarse = scale * np.array([_intersect(top, left), _intersect(top, right), _intersect(bottom, right),
                               _intersect(bottom, left)])
    full = np.clip((np.asarray(gray, dtype=np.float64) - low) / (high - low), 0, 1)
    return _refine(full, coarse, reach=2 * scale + 4)


def _refine(pixels: np.ndarray, corners: np.ndarray, reach: float) -> np.ndarray:
    """The corners again, from each edge traced at full resolution, in two passes. The corners must be right to a
    tenth of a pixel: a cell's grade moves with them (a quarter pixel flips about 3 % of csba_squeeze.elpv's
    grades).

    The first pass searches `reach` pixels either side of the coarse edge and takes the level a fifth of the way
    from the background up to the cell deep inside (6 pixels beyond the search), which a cell's darker border
    cannot hide. That level lies in the blur's foot, outside the edge (0.12 px on average on generated modules).
    The second pass looks 4 pixels either side of the first's edge and takes the level 0.3 of the way from the
    background 1.5-3 pixels outside up to the cell 1.5-3 pixels inside: a level set by the cell's own border, near
    the middle of the blurred step. It halves the bias (4x6 modules: 0.14 -> 0.08 px mean error; the grades of
    the cells cut exactly, 97.3 -> 98.5 %)."""
    coarse = _traced(pixels, corners, np.arange(-reach - 6, reach + 0.125, 0.25),
                     inside=(-reach - 6, -reach - 0.25), outside=(reach - 1.75, reach), level=0.2)
    return _traced(pixels, coarse, np.arange(-4, 4.0625, 0.125), inside=(-3, -1.5), outside=(1.5, 3), level=0.3)


def _traced(pixels: np.ndarray, corners: np.ndarray, offsets: np.ndarray, inside: Tuple[float, float],
            outside: Tuple[float, float], level: float) -> np.ndarray:
    """The corners of the four edges traced along 400 lines across each (`offsets` from the edge, outwards
    positive): where the image last falls, going outwards, through `level` of the way from the median over the
    offsets `outside` up to the median over `inside` on that line (interpolated between samples; a dim cell's
    own level, so that it does not pull the edge inwards), a line fitted to those points, and the lines
    intersected. The corners as given where an edge cannot be traced."""
    step = offsets[1] - offsets[0]
    within = [(offsets >= low - 1e-9) & (offsets <= high + 1e-9) for low, high in (inside, outside)]
    lines = []
    for start, end, horizontal in ((0, 1, True), (1, 2, False), (3, 2, True), (0, 3, False)):
        along = corners[end] - corners[start]
        outward = np.array([along[1], -along[0]]) / np.linalg.norm(along)
        if np.dot(outward, corners[start] - corners.mean(0)) < 0:
            outward = -outward
        points = corners[start] + np.linspace(0.05, 0.95, 400)[:, None] * along
        samples = points[:, None, :] + offsets[None, :, None] * outward  # (lines, offsets, xy)
        # PIL's pixel k spans [k, k + 1): its value sits at k + 0.5, where map_coordinates reads index k
        values = ndimage.map_coordinates(pixels, [samples[..., 1] - 0.5, samples[..., 0] - 0.5], order=1,
                                         mode='nearest')
        cell, background = np.median(values[:, within[0]], 1), np.median(values[:, within[1]], 1)
        threshold = (background + level * (cell - background))[:, None]
        above = values >= threshold
        crossing = above[:, :-1] & ~above[:, 1:]
        found = crossing.any(1) & (cell - background > 0.2)  # not across a gap or a dead cell
        last = crossing.shape[1] - 1 - np.argmax(crossing[:, ::-1], 1)
        rows, i = np.flatnonzero(found), last[found]
        fraction = (values[rows, i] - threshold[rows, 0]) / (values[rows, i] - values[rows, i + 1])
        edge = samples[rows, i] + (fraction * step)[:, None] * outward
        if len(edge) < 2:
            return corners
        lines.append(_fit_line(edge[:, 0], edge[:, 1]) if horizontal else _fit_line(edge[:, 1], edge[:, 0]))
    top, right, bottom, left = lines
    return np.array([_intersect(top, left), _intersect(top, right), _intersect(bottom, right),
                     _intersect(bottom, left)])


def check_corners(corners: np.ndarray, width: int, height: int) -> np.ndarray:
    """The corners as given, once they lie inside a width x height image and make a convex quadrilateral in the
    order top-left, top-right, bottom-right, bottom-left; ModuleError naming the problem otherwise."""
    corners = np.asarray(corners, dtype=np.float64).reshape(4, 2)
    outside = [f'{name} {x:g},{y:g}' for name, (x, y) in zip(CORNERS, corners)
               if not (0 <= x <= width and 0 <= y <= height)]
    if outside:
        raise ModuleError(f'--corners: {", ".join(outside)} lie outside the {width}x{height} image')
    edges = np.roll(corners, -1, 0) - corners
    turns = edges[:, 0] * np.roll(edges, -1, 0)[:, 1] - edges[:, 1] * np.roll(edges, -1, 0)[:, 0]
    if not (turns > 0).all():  # clockwise on screen (y down): every turn the same way, none straight
        raise ModuleError('--corners do not make a convex quadrilateral; give them as X,Y in the order top-left, '
                          'top-right, bottom-right, bottom-left')
    return corners


def homography(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 3x3 projective map that takes the 4 `source` points to the 4 `target` points."""
    rows, values = [], []
    for (x, y), (u, v) in zip(source, target):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        values += [u, v]
    return np.append(np.linalg.solve(np.array(rows, float), np.array(values, float)), 1.0).reshape(3, 3)


def _upright(width: int, height: int) -> np.ndarray:
    return np.array([(0, 0), (width, 0), (width, height), (0, height)], dtype=float)


def rectify(image: Image.Image, corners: np.ndarray, size: Optional[Tuple[int, int]] = None) -> Image.Image:
    """The module inside `corners` mapped onto an upright rectangle, (width, height) = `size` or the mean lengths
    of the quadrilateral's opposite sides (its own resolution)."""
    corners = np.asarray(corners, dtype=float)
    if size is None:
        width = (np.linalg.norm(corners[1] - corners[0]) + np.linalg.norm(corners[2] - corners[3])) / 2
        height = (np.linalg.norm(corners[3] - corners[0]) + np.linalg.norm(corners[2] - corners[1])) / 2
        size = (int(round(width)), int(round(height)))
    to_image = homography(_upright(*size), corners)  # PIL asks, for each output pixel, where it comes from
    return image.transform(size, Image.Transform.PERSPECTIVE, tuple((to_image / to_image[2, 2]).ravel()[:8]),
                           resample=Image.Resampling.BILINEAR)


def parse_grid(text: str) -> Optional[Tuple[int, int]]:
    """(rows, cols) of 'ROWSxCOLS', None for 'auto'; ModuleError for anything else."""
    if text == 'auto':
        return None
    rows, _, cols = text.lower().partition('x')
    if not (rows.isdigit() and cols.isdigit() and int(rows) > 0 and int(cols) > 0):
        raise ModuleError(f'--grid {text}: give the cells as ROWSxCOLS with both at least 1 (e.g. 6x10), or auto')
    return int(rows), int(cols)


def _gap_count(profile: np.ndarray) -> Optional[int]:
    """The cells along a brightness profile (`_profiles`): one more than its dark gaps, when they are evenly spaced."""
    dark = profile < 0.4 * np.median(profile)
    starts = np.flatnonzero(dark[1:] & ~dark[:-1]) + 1
    ends = np.flatnonzero(~dark[1:] & dark[:-1]) + 1
    if dark[0]:
        ends = ends[1:]
    centres = [(s + e) / 2 for s, e in zip(starts, ends) if e < len(profile) - 1]
    if not centres:
        return None
    spacing = np.diff([0, *centres, len(profile)])
    return len(centres) + 1 if spacing.std() <= 0.2 * spacing.mean() else None


def _profiles(rectified: Image.Image) -> Tuple[np.ndarray, np.ndarray]:
    """(per row, per column) brightness of a rectified module that only a gap darkens: the 80th percentile along
    each line, which stays bright where a dead cell or a dark defect covers part of the line."""
    pixels = np.asarray(rectified.convert('L'), dtype=np.float64)
    return np.percentile(pixels, 80, axis=1), np.percentile(pixels, 80, axis=0)


def find_grid(rectified: Image.Image) -> Tuple[int, int]:
    """(rows, cols) of a rectified module, from the dark gaps between its cells; ModuleError where they do not
    show evenly."""
    rows, cols = (_gap_count(profile) for profile in _profiles(rectified))
    if rows is None or cols is None:
        raise ModuleError('--grid auto: the gaps between cells do not show evenly; pass --grid ROWSxCOLS')
    return rows, cols


def _gap_width(profile: np.ndarray, count: int) -> float:
    """The mean width of the dark gaps between `count` cells along a brightness profile (`_profiles`; 0 where none
    shows): the runs darker than 0.4 of its median within a fifth of a pitch of each nominal boundary."""
    pitch = len(profile) / count
    dark = profile < 0.4 * np.median(profile)
    widths = []
    for i in range(1, count):
        nominal = int(round(i * pitch))
        low, high = max(1, nominal - int(0.2 * pitch)), min(len(profile) - 1, nominal + int(0.2 * pitch))
        window = np.flatnonzero(dark[low:high]) + low
        if len(window):
            centre = window[np.argmin(np.abs(window - nominal))]  # the dark run nearest the nominal boundary
            start, end = centre, centre + 1
            while start > low and dark[start - 1]:
                start -= 1
            while end < high and dark[end]:
                end += 1
            widths.append(end - start)
    return float(np.mean(widths)) if widths else 0.0


Box = Tuple[float, float, float, float]  # (left, top, right, bottom)


def cell_boxes(rectified: Image.Image, rows: int, cols: int) -> Dict[Tuple[int, int], Box]:
    """(row, col) -> (left, top, right, bottom) of each cell in the upright module, in its continuous pixel
    coordinates: the module divided into equal cells and the mean gap between them (where gaps show), so that a
    cell is cut as a cell image is, without its neighbours' borders, and a small change of the corners moves the
    boxes a little, never by a whole pixel."""
    width, height = rectified.size
    per_row, per_col = _profiles(rectified)
    gap_y, gap_x = _gap_width(per_row, rows), _gap_width(per_col, cols)
    cell_w, cell_h = (width - (cols - 1) * gap_x) / cols, (height - (rows - 1) * gap_y) / rows
    return {(r, c): (c * (cell_w + gap_x), r * (cell_h + gap_y), c * (cell_w + gap_x) + cell_w,
                     r * (cell_h + gap_y) + cell_h) for r in range(rows) for c in range(cols)}


def sample_cell(image: Image.Image, corners: np.ndarray, upright_size: Tuple[int, int],
                box: Box, size: Tuple[int, int]) -> Image.Image:
    """The cell `box` of the upright module (of `upright_size`, whose corners in `image` are `corners`), sampled
    straight from `image` at `size`: one resampling, smooth in the corners."""
    left, top, right, bottom = box
    cell = np.array([(left, top), (right, top), (right, bottom), (left, bottom)])
    to_image = homography(_upright(*upright_size), np.asarray(corners, float))
    points = np.c_[cell, np.ones(4)] @ to_image.T
    to_cell = homography(_upright(*size), points[:, :2] / points[:, 2:])
    return image.transform(size, Image.Transform.PERSPECTIVE, tuple((to_cell / to_cell[2, 2]).ravel()[:8]),
                           resample=Image.Resampling.BILINEAR)


@dataclass
class ComposedModule:
    """A module built from cells: the image (8-bit 'L' or 16-bit 'I;16'), its true corners (4, 2) and grid."""
    image: Image.Image
    corners: np.ndarray
    rows: int
    cols: int
    bits: int


def compose_module(cells: Sequence[Image.Image], rows: int, cols: int, rng: np.random.Generator,
                   cell_px: int = 96, gap_px: int = 5, rotate_deg: float = 5.0, warp: float = 0.04,
                   bits: int = 8) -> ComposedModule:
    """The cells (row by row) tiled rows x cols with dark gaps, on a dark background, rotated by up to
    `rotate_deg` and each corner moved by up to `warp` of the module's size (a camera's perspective), stored at
    `bits` bits (12 and 16: the 8-bit values scaled into that range, in a 16-bit PNG's mode)."""
    if len(cells) != rows * cols:
        raise ValueError(f'{rows}x{cols} needs {rows * cols} cells, got {len(cells)}')
    width, height = cols * cell_px + (cols - 1) * gap_px, rows * cell_px + (rows - 1) * gap_px
    flat = np.full((height, width), 12, dtype=np.uint8)
    for i, cell in enumerate(cells):
        r, c = divmod(i, cols)
        top, left = r * (cell_px + gap_px), c * (cell_px + gap_px)
        flat[top:top + cell_px, left:left + cell_px] = np.asarray(cell.convert('L').resize((cell_px, cell_px),
                                                                                           Image.Resampling.BILINEAR))
    margin = int(0.15 * max(width, height))
    canvas = (int(width + 2 * margin), int(height + 2 * margin))
    angle = np.deg2rad(rng.uniform(-rotate_deg, rotate_deg))
    centre = np.array(canvas) / 2
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    corners = (_upright(width, height) - [width / 2, height / 2]) @ rotation.T + centre
    corners += rng.uniform(-warp, warp, (4, 2)) * [width, height]
    to_flat = homography(corners, _upright(width, height))
    module = Image.fromarray(flat).transform(canvas, Image.Transform.PERSPECTIVE,
                                             tuple((to_flat / to_flat[2, 2]).ravel()[:8]),
                                             resample=Image.Resampling.BILINEAR, fillcolor=12)
    pixels = np.asarray(module, dtype=np.float64) + rng.normal(0, 2, (canvas[1], canvas[0]))  # sensor noise
    pixels = np.clip(pixels, 0, 255)
    if bits == 8:
        image = Image.fromarray(np.round(pixels).astype(np.uint8), mode='L')
    elif bits in (12, 14, 16):
        image = Image.fromarray(np.round(pixels * (2 ** bits - 1) / 255).astype(np.uint16))
    else:
        raise ValueError(f'bits must be 8, 12, 14 or 16, got {bits}')
    return ComposedModule(image, corners, rows, cols, bits)
