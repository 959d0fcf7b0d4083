"""Formula-driven images: fractals of random iterated function systems (IFS), one class per system, to pretrain a
backbone without a single real image.

FractalDB (Kataoka et al., ACCV 2020) makes each category one IFS, a few random affine maps, and each instance of it
the same system with one map perturbed. The maps here are sampled as Anderson & Farrell (WACV 2022) sample them:
each linear part is rotation · diag(s1, s2) · rotation (with a random reflection) and the singular values of all maps
sum, weighted 1 and 2, to a drawn value alpha in [(5 + n) / 2, (6 + n) / 2], which keeps every map contractive and
the shapes neither dust nor blobs. Rendering is the chaos game, many walkers in parallel, as a point density in
grayscale; each instance gets its own colouring (background and foreground levels, gamma, dark on bright or bright
on dark, the way an EL image shows a crack) and flips.

Everything is drawn from numpy generators seeded by (seed, stream, category[, instance]), so an image depends only
on (seed, category, instance, size): the first categories of a larger set are the same images.
"""
from typing import Iterator, Tuple

import numpy as np

from .errors import DatasetError

__all__ = ['MIN_SIZE', 'sample_system', 'category_system', 'instance_system', 'render', 'fractal_image',
           'check_fractal_options', 'fractal_images']

MIN_SIZE = 16  # below this a fractal is a few pixels: nothing to learn from
MAPS = (2, 5)  # maps per system, drawn in [2, 5)
WALKERS = 256
BURN_IN = 24  # steps before a walker's points count: contraction 0.98^24 puts it within 2 % of the attractor
MIN_FILL = 0.06  # a category's plain rendering must cover this share of the frame (FractalDB's filter)
SYSTEMS, FILL_CHECKS, INSTANCES = 0, 1, 2  # the random streams of one seed


def _singular_values(n: int, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) singular values in [0, 1] with s1 >= s2 per map and sum(s1 + 2 * s2) == alpha (0 < alpha < 3n)."""
    values = np.empty((n, 2))
    left, spare = alpha, alpha - 3 * n + 3  # what the remaining maps must still add up to, and its floor
    for i in range(n - 1):
        s1 = rng.uniform(max(0.0, spare / 3), min(1.0, left))
        left, spare = left - s1, spare - s1
        s2 = rng.uniform(max(0.0, spare / 2), min(s1, left / 2))
        left, spare = left - 2 * s2, spare - 2 * s2 + 3
        values[i] = s1, s2
    s2 = rng.uniform(max(0.0, (left - 1) / 2), left / 3)
    values[-1] = left - 2 * s2, s2
    return values


def _rotations(count: int, rng: np.random.Generator) -> np.ndarray:
    angle = rng.uniform(-np.pi, np.pi, count)
    rotation = np.stack([np.stack([np.cos(angle), -np.sin(angle)], -1),
                         np.stack([np.sin(angle), np.cos(angle)], -1)], -2)
    reflection = np.sign(rng.random((count, 2, 1)) - 0.5) * np.eye(2)
    return rotation @ reflection


def sample_system(rng: np.random.Generator) -> np.ndarray:
    """A random contractive IFS: (n, 2, 3) affine maps [A | b], n in MAPS, translations in [-1, 1]."""
    n = int(rng.integers(*MAPS))
    alpha = rng.uniform((5 + n) / 2, (6 + n) / 2)
    u, v = _rotations(n, rng), _rotations(n, rng)
    system = np.empty((n, 2, 3))
    system[:, :, :2] = u * _singular_values(n, alpha, rng)[:, None, :] @ v
    system[:, :, 2] = rng.uniform(-1, 1, (n, 2))
    return system


def _chaos_game(system: np.ndarray, points: int, rng: np.random.Generator) -> np.ndarray:
    """(points, 2) points of the attractor, maps drawn in proportion to their area (|det A|)."""
    area = np.abs(np.linalg.det(system[:, :, :2])) + 1e-6
    steps = BURN_IN + -(-points // WALKERS)
    choice = rng.choice(len(system), size=(steps, WALKERS), p=area / area.sum())
    xy = rng.uniform(-1, 1, (WALKERS, 2))
    out = np.empty((steps - BURN_IN, WALKERS, 2))
    for step in range(steps):
        maps = system[choice[step]]
        xy = np.einsum('wij,wj->wi', maps[:, :, :2], xy) + maps[:, :, 2]
        if step >= BURN_IN:
            out[step - BURN_IN] = xy
    return out.reshape(-1, 2)[:points]


def _density(system: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """The attractor's point density on a size x size frame (the shape fitted into it, aspect kept), in [0, 1]."""
    xy = _chaos_game(system, 4 * size * size, rng)
    low, high = np.percentile(xy, 0.5, axis=0), np.percentile(xy, 99.5, axis=0)  # a stray point does not set the frame
    scale = (size - 3) / max(float((high - low).max()), 1e-9)
    centre = (low + high) / 2
    pixels = np.floor((xy - centre) * scale + size / 2).astype(np.int64)
    inside = ((pixels >= 0) & (pixels < size)).all(1)
    counts = np.bincount(pixels[inside, 1] * size + pixels[inside, 0], minlength=size * size).reshape(size, size)
    return np.log1p(counts) / np.log1p(counts.max()) if counts.max() > 0 else counts.astype(float)


def category_system(seed: int, category: int) -> np.ndarray:
    """The IFS of `category`: the first sampled system whose plain rendering fills MIN_FILL of the frame."""
    rng = np.random.default_rng([seed, SYSTEMS, category])
    for _ in range(1000):
        system = sample_system(rng)
        if (_density(system, 32, np.random.default_rng([seed, FILL_CHECKS, category])) > 0).mean() >= MIN_FILL:
            return system
    raise RuntimeError(f'no fractal fills {MIN_FILL:.0%} of the frame after 1000 systems (seed {seed}, '
                       f'category {category})')


def instance_system(system: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The system with one map's linear part scaled by w in [0.8, 1.2] (FractalDB's instances), kept contractive."""
    k = int(rng.integers(len(system)))
    largest = np.linalg.norm(system[k, :, :2], 2)
    weight = min(rng.uniform(0.8, 1.2), 0.98 / max(largest, 1e-9))
    varied = system.copy()
    varied[k, :, :2] *= weight
    return varied


def render(system: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A uint8 size x size grayscale image of the system, coloured and flipped at random (see the module)."""
    density = _density(system, size, rng)
    background, foreground = rng.uniform(0.0, 0.3), rng.uniform(0.6, 1.0)
    image = np.where(density > 0, background + (foreground - background) * density ** rng.uniform(0.5, 1.5),
                     background)
    if rng.random() < 0.5:  # dark on bright, as an EL image shows a crack
        image = 1.0 - image
    if rng.random() < 0.5:
        image = image[:, ::-1]
    if rng.random() < 0.5:
        image = image[::-1]
    return np.ascontiguousarray(np.round(image * 255)).astype(np.uint8)


def fractal_image(seed: int, category: int, instance: int, size: int) -> np.ndarray:
    """Instance `instance` of category `category`: uint8 (size, size)."""
    rng = np.random.default_rng([seed, INSTANCES, category, instance])
    return render(instance_system(category_system(seed, category), rng), size, rng)


def check_fractal_options(categories: int, instances: int, size: int) -> None:
    """Raise DatasetError naming an option that cannot make a dataset."""
    for name, value, least in (('categories', categories, 1), ('instances', instances, 1), ('size', size, MIN_SIZE)):
        if not isinstance(value, (int, np.integer)) or value < least:
            raise DatasetError(f'fractals: {name}={value!r} must be an integer of at least {least}'
                               + (' (pixels: smaller fractals are a few dots)' if name == 'size' else '') + '.')


def fractal_images(seed: int, categories: int, instances: int, size: int) -> Iterator[Tuple[np.ndarray, int]]:
    """Every (image, category) of the set, category by category."""
    check_fractal_options(categories, instances, size)
    for category in range(categories):
        system = category_system(seed, category)
        for instance in range(instances):
            rng = np.random.default_rng([seed, INSTANCES, category, instance])
            yield render(instance_system(system, rng), size, rng), category
