"""The tensor input pipeline: the uint8 cache equals the PIL eval path, is built once, and batch augmentation
does what its options say, reproducibly per epoch."""
import pytest
import torch

from timm_csba.data import attach_transform, build_dataset, build_transforms
from timm_csba.tensor_input import BatchAugment, PixelDataset, cached_pixels, collate_pixels, normalize

CONFIG = dict(input_size=(1, 48, 48), mean=(0.597,), std=(0.161,), interpolation='bilinear', crop_pct=1.0,
              crop_mode='center')
NO_AUGMENT = dict(hflip=0., vflip=0., rot90=False, scale=(1., 1.), ratio=(1., 1.), color_jitter=0.)


@pytest.fixture(scope='module')
def cells():
    return build_dataset('elpv')['validation'].select(range(12))


@pytest.fixture(scope='module')
def pixels(cells, tmp_path_factory):
    return cached_pixels(cells, CONFIG, cache_dir=str(tmp_path_factory.mktemp('cache')))


def test_cache_is_uint8_and_evaluates_exactly_like_the_pil_path(cells, pixels):
    assert pixels.pixels.dtype == torch.uint8 and pixels.pixels.shape == (12, 1, 48, 48)
    assert pixels.labels.tolist() == cells['label']
    reference = attach_transform(cells, build_transforms(CONFIG, is_training=False))[:]
    expected = torch.stack(reference['pixel_values'])
    torch.testing.assert_close(normalize(pixels.pixels, CONFIG['mean'], CONFIG['std']), expected, atol=1e-5, rtol=0)


def test_cache_is_built_once_per_split_and_size(cells, tmp_path, monkeypatch):
    cached_pixels(cells, CONFIG, cache_dir=str(tmp_path))
    files = sorted(p.name for p in (tmp_path / 'timm_csba_pixels').iterdir())
    import timm_csba.tensor_input as tensor_input
    monkeypatch.setattr(tensor_input, 'decode_image', lambda value: pytest.fail('decoded again'))
    again = cached_pixels(cells, CONFIG, cache_dir=str(tmp_path))
    assert again.pixels.shape[0] == 12
    assert sorted(p.name for p in (tmp_path / 'timm_csba_pixels').iterdir()) == files
    monkeypatch.undo()
    cached_pixels(cells, {**CONFIG, 'input_size': (1, 32, 32)}, cache_dir=str(tmp_path))
    assert len(list((tmp_path / 'timm_csba_pixels').glob('*.arrow'))) == 2  # another size, another file


def test_loader_batches_without_workers(pixels):
    loader = torch.utils.data.DataLoader(pixels, batch_size=5, shuffle=False, collate_fn=collate_pixels)
    batches = list(loader)
    assert [len(b['label']) for b in batches] == [5, 5, 2]
    assert torch.equal(batches[1]['pixel_values'], pixels.pixels[5:10])
    assert batches[0]['pixel_values'].dtype == torch.uint8


def test_no_op_augmentation_is_normalisation(pixels):
    out = BatchAugment(CONFIG, **NO_AUGMENT)(pixels.pixels)
    torch.testing.assert_close(out, normalize(pixels.pixels, CONFIG['mean'], CONFIG['std']), atol=1e-4, rtol=0)


def test_flips_and_rotations_are_exact_pixel_permutations(pixels):
    x = pixels.pixels[:4]
    plain = normalize(x, CONFIG['mean'], CONFIG['std'])
    hflipped = BatchAugment(CONFIG, **{**NO_AUGMENT, 'hflip': 1.})(x)
    torch.testing.assert_close(hflipped, plain.flip(3), atol=1e-4, rtol=0)
    vflipped = BatchAugment(CONFIG, **{**NO_AUGMENT, 'vflip': 1.})(x)
    torch.testing.assert_close(vflipped, plain.flip(2), atol=1e-4, rtol=0)
    rotated = BatchAugment(CONFIG, **{**NO_AUGMENT, 'rot90': True})(pixels.pixels)
    turns = set()
    for image, reference in zip(rotated, normalize(pixels.pixels, CONFIG['mean'], CONFIG['std'])):
        matches = [k for k in range(4) if torch.allclose(image, torch.rot90(reference, k, (1, 2)), atol=1e-4)]
        assert len(matches) == 1
        turns.add(matches[0])
    assert len(turns) > 1  # 12 images do not all get the same rotation


def test_crops_zoom_in_and_jitter_changes_intensity(pixels):
    x = pixels.pixels
    cropped = BatchAugment(CONFIG, **{**NO_AUGMENT, 'scale': (0.25, 0.25)})(x)
    plain = normalize(x, CONFIG['mean'], CONFIG['std'])
    assert cropped.shape == plain.shape and not torch.allclose(cropped, plain, atol=1e-2)
    jittered = BatchAugment(CONFIG, **{**NO_AUGMENT, 'color_jitter': 0.4})(x)
    scale = (jittered - plain).flatten(1).abs().mean(1)
    assert (scale > 0).all()


def test_same_epoch_same_draws_other_epoch_or_rank_other_draws(pixels):
    options = dict(hflip=0.5, vflip=0.5, rot90=True, scale=(0.5, 1.), color_jitter=0.3)
    a, b = BatchAugment(CONFIG, **options, seed=3), BatchAugment(CONFIG, **options, seed=3)
    a.set_epoch(2), b.set_epoch(2)
    assert torch.equal(a(pixels.pixels), b(pixels.pixels))
    b.set_epoch(3)
    assert not torch.equal(a(pixels.pixels), b(pixels.pixels))
    other_rank = BatchAugment(CONFIG, **options, seed=3, rank=1)
    a.set_epoch(2), other_rank.set_epoch(2)
    assert not torch.equal(a(pixels.pixels), other_rank(pixels.pixels))


def test_pixel_dataset_single_items():
    dataset = PixelDataset(torch.zeros(3, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1, 2]))
    assert len(dataset) == 3 and dataset[2]['label'] == 2
