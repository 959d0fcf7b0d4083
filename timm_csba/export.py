"""`python -m timm_csba.export`: export a model with weights to ONNX, checked against PyTorch before it is written.

    python -m timm_csba.export csba_squeeze.elpv --format onnx --out onnx/csba_squeeze          # from the Hub
    python -m timm_csba.export local-dir:hub/csba_squeeze_sum.elpv --out onnx/csba_squeeze_sum
    python -m timm_csba.export runs/elpv/best --out onnx/mine --check-images my_cells/

Writes to --out:

    model.onnx           input `input` [batch, C, H, W] float32 at the model's input size, output `logits`
                         [batch, classes]; the csba heads linear before pooling add `class_maps` [batch, classes, h, w]
                         (the exact class activation maps whose spatial means are the logits)
    preprocessing.json   what feeds it: input size, channels, mean, std, interpolation, crop, class names, the
                         logit offsets already folded into it, and the check below

The export counts only once ONNX Runtime gives the same top-1 class as PyTorch (fp32) on every checked image: the
ELPV test split's 525 cells by default (the [train] extra), or the images of --check-images. The largest logit
difference is printed. Then `predict` and `inspect` take `--model DIR/model.onnx` (the [onnx] extra).
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence

from PIL import Image

from .cli_args import positive_int
from .extras import missing_extra
from .files import OutputPathError, check_output_path, write_json
from .inference import InferenceError, find_images, load_image, load_model, model_source
from .onnx_model import ONNX_SUFFIX, PREPROCESSING_FILE, OnnxModel, OnnxModelError, is_onnx_path
from .pretrained import source_config

try:  # the [onnx] extra
    import onnx  # noqa: F401  (timm's exporter imports it when it runs; checked here, before any work)
    import onnxruntime  # noqa: F401
    from .onnx_export import ExportError, check_export, compare_logits, export_onnx, onnx_preprocessing
except ModuleNotFoundError as e:
    sys.exit(missing_extra(e, 'python -m timm_csba.export', 'onnx'))

try:  # the [train] extra: the default check reads the ELPV test split
    from .data.builders import build_dataset
except ModuleNotFoundError as e:
    build_dataset, train_missing = None, e

FORMATS = ('onnx',)
ELPV_TEST = 'the ELPV test split'


def _check_images(folder: Optional[str], limit: Optional[int]) -> List[Image.Image]:
    """The images the export is checked on: --check-images, else the ELPV test split (split seed 0, 20 %)."""
    if folder:
        images = [load_image(path) for path in find_images([folder])]
    elif build_dataset is None:
        sys.exit(missing_extra(train_missing, 'checking the export on ELPV test cells', 'train')
                 + '; or pass --check-images FOLDER')
    else:
        images = list(build_dataset('elpv')['test']['image'])
    return images[:limit] if limit else images


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m timm_csba.export', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', help='csba_squeeze.elpv, hf-hub:ORG/NAME, local-dir:DIR or DIR (a run\'s best/)')
    parser.add_argument('--format', default='onnx', choices=FORMATS, help='what to export to')
    parser.add_argument('--out', required=True, help='folder for model.onnx and preprocessing.json')
    parser.add_argument('--check-images', metavar='FOLDER', help='check ONNX Runtime against PyTorch on these '
                        'images instead of the ELPV test split\'s cells')
    parser.add_argument('--check-limit', type=positive_int, help='check on the first N images only')
    parser.add_argument('--opset', type=positive_int, help='ONNX opset (default: the exporter\'s)')
    args = parser.parse_args(argv)
    try:
        if is_onnx_path(args.model):
            raise InferenceError(f'{args.model} is an ONNX model already; export a PyTorch model (a timm name with '
                                 f'weights, hf-hub:, local-dir: or a folder)')
        out = check_output_path(args.out, '--out', folder=True)
        model = load_model(args.model).float()
        source = model_source(args.model)
        preprocessing = onnx_preprocessing(model, source, source_config(source))
        images = _check_images(args.check_images, args.check_limit)
        where = args.check_images or ELPV_TEST
        out.mkdir(parents=True, exist_ok=True)
        # exported and checked in a folder beside the outputs, then renamed in: a failed check writes nothing
        with tempfile.TemporaryDirectory(prefix='.export.', dir=out) as tmp:
            onnx_path = Path(tmp) / f'model{ONNX_SUFFIX}'
            export_onnx(model, onnx_path, preprocessing['input_size'], args.opset)
            write_json(Path(tmp) / PREPROCESSING_FILE, preprocessing)
            report = compare_logits(model, OnnxModel(str(onnx_path)), images)
            check_export(report, where)
            write_json(Path(tmp) / PREPROCESSING_FILE, {**preprocessing, 'check': {'on': where, **report}})
            os.replace(onnx_path, out / onnx_path.name)
            os.replace(Path(tmp) / PREPROCESSING_FILE, out / PREPROCESSING_FILE)
    except (InferenceError, OutputPathError, OnnxModelError, ExportError) as e:
        sys.exit(f'error: {e}')
    print(f'{args.model} -> {out / onnx_path.name} (outputs: {", ".join(preprocessing["outputs"])}): ONNX Runtime '
          f'and PyTorch agree on the top-1 class of {report["top1_identical"]} of {report["images"]} images of '
          f'{where}; largest logit difference {report["max_abs_logit_difference"]:.2e}')


if __name__ == '__main__':
    main()
