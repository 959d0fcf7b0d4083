"""The timm_csba demo (a Hugging Face Space, or locally: python space/app.py): grade an EL cell with the probability
of each grade and the heat map of where the model sees the defect, or inspect a whole module (its grade map and a
table of its cells), on CPU.

The model is the published csba_squeeze.elpv: from this repository's staged folder when the app runs from a
checkout (offline), else from the Hub; CSBA_MODEL names another (any --model of predict, a model.onnx included).
Images are uploaded as files and decoded by timm_csba itself, so 12-16-bit EL images map onto 8 bits by their bit
depth, and a file that is not an image gets a message on the page.
"""
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import gradio as gr
import torch
from PIL import Image

from timm_csba.cam import CamError, class_activation_maps, has_maps, overlay_heat
from timm_csba.data.images import UndecodableImage, decode_image
from timm_csba.data.transforms import build_transforms
from timm_csba.inference import InferenceError, label_names, load_model
from timm_csba.inspection import grade_map, inspect_module
from timm_csba.module import ModuleError, parse_grid

HERE = Path(__file__).resolve().parent
STAGED = HERE.parent / 'hub' / 'csba_squeeze.elpv'
EXAMPLE_CELLS = sorted((HERE / 'examples').glob('elpv_test_*.png'))
# the example module: beside the app in a Space, in the repository's examples/ in a checkout
EXAMPLE_MODULE = next((p for p in (HERE / 'examples' / 'module_6x10.png',
                                   HERE.parent / 'examples' / 'module_6x10.png') if p.is_file()), None)
GRIDS = ('6x10', '6x12', '12x12', '4x6', 'auto')


def default_model() -> str:
    return os.environ.get('CSBA_MODEL') or (f'local-dir:{STAGED}' if STAGED.is_dir() else 'csba_squeeze.elpv')


def _shown(model_name: str) -> str:
    return 'csba_squeeze.elpv, staged in this repository' if model_name == f'local-dir:{STAGED}' else model_name


class Demo:
    """The model, loaded once, and the two things the page does with it."""

    def __init__(self, model_name: str):
        self.model = load_model(model_name)
        self.names = label_names(self.model)
        self.transform = build_transforms(self.model, is_training=False)

    @staticmethod
    def _read(path: Optional[str], what: str) -> Image.Image:
        if not path:
            raise gr.Error(f'Upload an {what} image first (PNG, TIFF, JPEG; 8 to 16 bits).')
        try:
            return decode_image(path)
        except UndecodableImage as e:
            raise gr.Error(f'{Path(path).name} cannot be read as an image: {e.reason}. Upload a PNG, TIFF or JPEG '
                           f'{what} image.') from None

    def grade_cell(self, path: Optional[str]) -> Tuple[Optional[Dict[str, float]], Optional[Image.Image]]:
        """The probability of each grade and, where the model allows, the heat map of its top grade; nothing once
        the upload is cleared."""
        if not path:
            return None, None
        image = self._read(path, 'EL cell')
        x = self.transform(image).unsqueeze(0)
        if not has_maps(self.model):
            with torch.inference_mode():
                probabilities, heat = self.model(x).float().softmax(1), None
        else:
            try:
                probabilities, heat = class_activation_maps(self.model, x)
            except CamError as e:
                raise gr.Error(str(e)) from None
        grades = {name: float(p) for name, p in zip(self.names, probabilities[0].tolist())}
        return grades, None if heat is None else overlay_heat(image, heat[0].numpy())

    def inspect(self, path: Optional[str], grid: str) -> Tuple[Image.Image, List[List], str]:
        """The module's grade map, its cells (row, col, grade, probabilities) and a one-line summary."""
        image = self._read(path, 'EL module')
        try:
            report = inspect_module(self.model, image, parse_grid(grid), heat_maps=False)
        except (ModuleError, InferenceError) as e:
            raise gr.Error(str(e)) from None
        rows = [[r + 1, c + 1, self.names[int(p.argmax())], *(round(float(v), 4) for v in p)]
                for (r, c), p in sorted(report.probabilities.items())]
        counts = [sum(row[2] == name for row in rows) for name in self.names]
        summary = f'{report.rows}x{report.cols} cells: ' + ', '.join(f'{n} {k}' for n, k in zip(self.names, counts))
        return grade_map(report, self.names), rows, summary


def build_demo(model_name: Optional[str] = None) -> gr.Blocks:
    model_name = model_name or default_model()
    demo_model = Demo(model_name)
    with gr.Blocks(title='timm_csba: EL defect grading') as demo:
        gr.Markdown('# Grade electroluminescence images of PV cells and modules\n'
                    f'Model: `{_shown(model_name)}` (grades: {", ".join(demo_model.names)}). '
                    'Upload a cell for the probability of each grade and where the model sees the defect, or a '
                    'whole module for its grade map.')
        with gr.Tab('Cell'):
            with gr.Row():
                cell = gr.File(label='EL cell image', file_types=['image'], type='filepath', elem_id='cell-file')
                with gr.Column():
                    grades = gr.Label(label='Grade', num_top_classes=len(demo_model.names), elem_id='cell-grades')
                    heat = gr.Image(label='Where the model sees it', type='pil', elem_id='cell-heat')
            gr.Examples([[str(p)] for p in EXAMPLE_CELLS], inputs=[cell])
            cell.change(demo_model.grade_cell, inputs=cell, outputs=[grades, heat])
        with gr.Tab('Module'):
            with gr.Row():
                with gr.Column():
                    module = gr.File(label='EL module image', file_types=['image'], type='filepath',
                                     elem_id='module-file')
                    grid = gr.Dropdown(GRIDS, value='6x10', allow_custom_value=True, label='Cells (rows x cols)',
                                       elem_id='module-grid')
                    run = gr.Button('Inspect', elem_id='module-run')
                with gr.Column():
                    summary = gr.Textbox(label='Summary', elem_id='module-summary')
                    module_map = gr.Image(label='Grade map', type='pil', elem_id='module-map')
            cells = gr.Dataframe(headers=['row', 'col', 'grade', *(f'p_{n}' for n in demo_model.names)],
                                 label='Cells', elem_id='module-cells')
            if EXAMPLE_MODULE is not None:
                gr.Examples([[str(EXAMPLE_MODULE), '6x10']], inputs=[module, grid])
            run.click(demo_model.inspect, inputs=[module, grid], outputs=[module_map, cells, summary])
    return demo


if __name__ == '__main__':
    try:
        app = build_demo()
    except InferenceError as e:  # e.g. offline, with the weights neither staged here nor in the HF cache
        sys.exit(f'error: {e}')
    app.launch()
