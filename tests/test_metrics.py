"""metrics.classification_metrics against counts done by hand."""
import numpy as np
import pytest

from timm_csba.metrics import classification_metrics, save_confusion_matrix


def test_metrics_by_hand(tmp_path):
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 0, 0]
    m = classification_metrics(y_true, y_pred, ['a', 'b', 'c'])
    assert m['accuracy'] == pytest.approx(3 / 6)
    # recalls 2/3, 1/2, 0 -> balanced accuracy 7/18
    assert m['balanced_accuracy'] == pytest.approx(7 / 18)
    # a: P 2/4 R 2/3 F1 4/7; b: P 1/2 R 1/2 F1 1/2; c: never predicted, F1 0
    assert m['per_class']['a'] == pytest.approx({'precision': 0.5, 'recall': 2 / 3, 'f1': 4 / 7, 'support': 3})
    assert m['per_class']['c']['f1'] == 0
    assert m['macro_f1'] == pytest.approx((4 / 7 + 1 / 2 + 0) / 3)
    assert m['confusion_matrix'] == [[2, 1, 0], [1, 1, 0], [1, 0, 0]]
    save_confusion_matrix(m, str(tmp_path / 'cm.png'))
    assert (tmp_path / 'cm.png').read_bytes()[:4] == b'\x89PNG'


def test_a_confusion_matrix_of_many_classes_stays_a_picture_of_bounded_size(tmp_path):
    """1,000 classes (the fractal pretext) would make a labelled figure 132,000 pixels wide; past MAX_ANNOTATED it
    is drawn as an unlabelled picture of the usual size."""
    from PIL import Image

    labels = np.arange(200).repeat(2)
    m = classification_metrics(labels, labels, [f'c{i}' for i in range(200)])
    save_confusion_matrix(m, str(tmp_path / 'many.png'))
    assert max(Image.open(tmp_path / 'many.png').size) <= 1400
