"""Inspect a whole EL module: find it, cut its cells, grade each through the model's own eval transform, and map
where each defect is (timm_csba.module for the geometry, timm_csba.cam for the maps); draw the module's grade map
and a cell's heat map."""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from timm.data import resolve_data_config

from .cam import class_activation_maps
from .data.transforms import build_transforms
from .module import cell_boxes, check_corners, find_grid, find_module, rectify, sample_cell

__all__ = ['ModuleReport', 'inspect_module', 'grade_colours', 'grade_map']


@dataclass
class ModuleReport:
    """What inspecting one module found: its corners in the image, the upright module, its grid, and per cell
    (row, col), counted from 0 at the top-left, its box in the upright module, the cell sampled for the model (at
    twice its input size), its class probabilities and its heat map."""
    corners: np.ndarray
    rectified: Image.Image
    rows: int
    cols: int
    boxes: Dict[Tuple[int, int], Tuple[float, float, float, float]]
    cells: Dict[Tuple[int, int], Image.Image]
    probabilities: Dict[Tuple[int, int], np.ndarray]
    heat: Dict[Tuple[int, int], np.ndarray]

    def grades(self) -> Dict[Tuple[int, int], int]:
        return {key: int(p.argmax()) for key, p in self.probabilities.items()}


def inspect_module(model: torch.nn.Module, image: Image.Image, grid: Optional[Tuple[int, int]] = None,
                   corners: Optional[np.ndarray] = None, batch_size: int = 64,
                   heat_maps: bool = True) -> ModuleReport:
    """Grade every cell of the 8-bit module `image` (timm_csba.data.images.to_8bit) with `model`, in batches, with
    a heat map of the predicted class per cell unless `heat_maps` is False (then `heat` is empty). `grid` (rows,
    cols) and `corners` are found when not given."""
    gray = image.convert('L')
    corners = find_module(np.asarray(gray)) if corners is None else check_corners(corners, *gray.size)
    rectified = rectify(gray, corners)
    rows, cols = grid or find_grid(rectified)
    boxes = cell_boxes(rectified, rows, cols)
    # sampled at twice the model's input size, which its eval transform then halves with an antialiasing filter:
    # a tenth of a pixel's error in the corners then moves the model's input by a twentieth
    size = tuple(2 * v for v in resolve_data_config(model=model)['input_size'][-2:])[::-1]
    cells = {key: sample_cell(gray, corners, rectified.size, box, size) for key, box in boxes.items()}
    transform = build_transforms(model, is_training=False)
    device = next(model.parameters(), torch.empty(0)).device  # an OnnxModel has none: CPU
    keys = list(cells)
    probabilities, heat = {}, {}
    for start in range(0, len(keys), batch_size):
        batch = keys[start:start + batch_size]
        x = torch.stack([transform(cells[key]) for key in batch]).to(device)
        if heat_maps:
            p, h = class_activation_maps(model, x)
            heat.update(zip(batch, h.cpu().numpy()))
        else:
            with torch.inference_mode():
                p = model(x).float().softmax(1)
        probabilities.update(zip(batch, p.cpu().numpy()))
    return ModuleReport(corners, rectified, rows, cols, boxes, cells, probabilities, heat)


def grade_colours(num_classes: int) -> List[Tuple[int, int, int]]:
    """A colour per grade: the first (no defect) green, the others from yellow to red as they rise."""
    steps = np.linspace(0, 1, max(num_classes - 1, 1))
    return [(40, 170, 60)] + [(230, int(210 * (1 - s)), 20) for s in steps][:num_classes - 1]


def grade_map(report: ModuleReport, names: Sequence[str], alpha: float = 0.35) -> Image.Image:
    """The upright module with each cell tinted by its grade and a legend of the grades with their counts."""
    base = report.rectified.convert('RGB')
    tint = Image.new('RGB', base.size)
    draw = ImageDraw.Draw(tint)
    colours = grade_colours(len(names))
    for key, grade in report.grades().items():
        draw.rectangle(_inclusive(report.boxes[key]), fill=colours[grade])
    blended = Image.blend(base, tint, alpha)
    outline = ImageDraw.Draw(blended)
    for box in report.boxes.values():
        outline.rectangle(_inclusive(box), outline=(255, 255, 255))
    counts = np.bincount(list(report.grades().values()), minlength=len(names))
    font = ImageFont.load_default()
    legend_h = 18 * len(names) + 8
    out = Image.new('RGB', (blended.width, blended.height + legend_h), (0, 0, 0))
    out.paste(blended, (0, 0))
    legend = ImageDraw.Draw(out)
    for i, (name, colour) in enumerate(zip(names, colours)):
        y = blended.height + 4 + 18 * i
        legend.rectangle((6, y + 2, 20, y + 14), fill=colour)
        legend.text((26, y), f'{name}: {counts[i]} cell(s)', fill=(255, 255, 255), font=font)
    return out


def _inclusive(box: Tuple[float, float, float, float]) -> Tuple[int, int, int, int]:
    """A continuous (left, top, right, bottom) box as ImageDraw's rectangle takes it (its last pixel included)."""
    left, top, right, bottom = (int(round(v)) for v in box)
    return left, top, right - 1, bottom - 1
