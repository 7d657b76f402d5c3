"""tinygrad_cnn.vision: the transforms against hand-computed truth (NumPy slicing, np.rot90, np.pad) and,
where torch is installed, against torch's own computations (to_tensor/normalize arithmetic, F.pad,
grid_sample for the warps); the datasets against IDX and CIFAR-10 files written byte by byte here."""
import gzip
import math
import pickle
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor
from tinygrad_cnn.utils.data import DataLoader
from tinygrad_cnn.vision import datasets, transforms as T
from tinygrad_cnn.vision.transforms import InterpolationMode
from tinygrad_cnn.vision.transforms import functional as TF

NEAREST, BILINEAR = InterpolationMode.NEAREST, InterpolationMode.BILINEAR


def uint8_images(min_side: int = 1, max_side: int = 9) -> st.SearchStrategy[np.ndarray]:
    """uint8 images (H, W) or (H, W, C) as the datasets give them."""
    side = st.integers(min_side, max_side)
    shapes = st.one_of(st.tuples(side, side), st.tuples(side, side, st.integers(1, 4)))
    return shapes.flatmap(lambda shape: hnp.arrays(np.uint8, shape))


def hwc(img: np.ndarray) -> np.ndarray:
    """An image (H, W) or (H, W, C) as (H, W, C)."""
    return img[:, :, None] if img.ndim == 2 else img


# ================================================================ ToTensor and Normalize

@given(img=uint8_images())
def test_to_tensor_scales_uint8_to_float32_chw(img):
    out = T.ToTensor()(img)
    assert isinstance(out, Tensor) and out.dtype == np.float32
    expected = np.array([[[hwc(img)[i, j, c] / 255 for j in range(img.shape[1])] for i in range(img.shape[0])]
                         for c in range(hwc(img).shape[2])], dtype=np.float32)
    np.testing.assert_array_equal(out.numpy(), expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32])
def test_to_tensor_keeps_other_dtypes_unscaled(dtype):
    img = np.arange(24).reshape(2, 3, 4).astype(dtype) * 3
    out = T.ToTensor()(img)
    assert out.dtype == dtype and out.shape == (4, 2, 3)
    assert out.numpy()[1, 0, 2] == img[0, 2, 1] == 27  # channel 1 of pixel (0, 2), not divided by 255


def test_to_tensor_matches_torch():
    torch = pytest.importorskip("torch")
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    expected = torch.from_numpy(img).permute(2, 0, 1).to(torch.float32).div(255)
    np.testing.assert_array_equal(T.ToTensor()(img).numpy(), expected.numpy())


def test_to_tensor_rejects_what_torchvision_rejects():
    with pytest.raises(TypeError, match="pic should be a NumPy array.*Tensor"):
        T.ToTensor()(Tensor(np.zeros((1, 2, 2), np.float32)))
    with pytest.raises(ValueError, match=r"2 or 3 dimensional.*\(1, 2, 2, 3\)"):
        T.ToTensor()(np.zeros((1, 2, 2, 3), np.uint8))


@given(x=hnp.arrays(np.float32, st.tuples(st.integers(1, 2), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
                    elements=st.floats(-10, 10, width=32)),
       data=st.data())
def test_normalize_is_per_channel_standardisation(x, data):
    channels = x.shape[1]
    mean = data.draw(st.lists(st.floats(-1, 1), min_size=channels, max_size=channels))
    std = data.draw(st.lists(st.floats(0.1, 3), min_size=channels, max_size=channels))
    for image in (x, x[0]):  # a batch (N, C, H, W) and one image (C, H, W)
        out = T.Normalize(mean, std)(Tensor(image))
        expected = np.empty_like(image)
        for c in range(channels):
            expected[..., c, :, :] = (image[..., c, :, :] - np.float32(mean[c])) / np.float32(std[c])
        assert out.dtype == np.float32
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6, atol=1e-6)


def test_normalize_matches_torch_and_its_gradient_is_one_over_std():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).random((3, 4, 5))
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    for dtype in (np.float32, np.float64):
        t = Tensor(x.astype(dtype), requires_grad=True)
        out = T.Normalize(mean, std)(t)
        ref = torch.tensor(x.astype(dtype))
        channels = lambda values: torch.tensor(values, dtype=ref.dtype).view(-1, 1, 1)
        ref = (ref - channels(mean)) / channels(std)
        assert out.dtype == dtype
        np.testing.assert_allclose(out.detach().numpy(), ref.numpy(), rtol=1e-6)
        out.sum().backward()
        np.testing.assert_allclose(t.grad.numpy(), np.broadcast_to(1 / np.array(std).reshape(3, 1, 1), x.shape),
                                   rtol=1e-6)


def test_normalize_inplace_changes_the_tensor():
    t = Tensor(np.full((2, 1, 1), 3.0, np.float32))
    out = T.Normalize((1.0, 2.0), (2.0, 0.5), inplace=True)(t)
    assert out is t and t.numpy().ravel().tolist() == [1.0, 2.0]
    fresh = Tensor(np.full((2, 1, 1), 3.0, np.float32))
    T.Normalize((1.0, 2.0), (2.0, 0.5))(fresh)
    assert fresh.numpy().ravel().tolist() == [3.0, 3.0]


def test_normalize_errors():
    image = Tensor(np.zeros((3, 2, 2), np.float32))
    with pytest.raises(ValueError, match="std evaluated to zero"):
        T.Normalize((0.5, 0.5, 0.5), (1.0, 0.0, 1.0))(image)
    with pytest.raises(TypeError, match="float tensor.*uint8"):
        T.Normalize((0.5,), (0.5,))(Tensor(np.zeros((1, 2, 2), np.uint8)))
    with pytest.raises(TypeError, match="Tensor image.*ndarray"):
        T.Normalize((0.5,), (0.5,))(np.zeros((2, 2, 1), np.float32))
    with pytest.raises(ValueError, match=r"\(\.\.\., C, H, W\).*\(2, 2\)"):
        T.Normalize((0.5,), (0.5,))(Tensor(np.zeros((2, 2), np.float32)))
    with pytest.raises(RuntimeError, match="mean has 2 values but the tensor has 3 channels"):
        T.Normalize((0.5, 0.5), (1.0, 1.0))(image)


# ================================================================ padding and RandomCrop

@given(img=uint8_images(), data=st.data())
def test_random_crop_is_a_crop_of_the_padded_image(img, data):
    pads = data.draw(st.integers(0, 3))
    h, w = data.draw(st.integers(1, img.shape[0] + 2 * pads)), data.draw(st.integers(1, img.shape[1] + 2 * pads))
    tg.manual_seed(data.draw(st.integers(0, 2 ** 32 - 1)))
    out = T.RandomCrop((h, w), padding=pads, fill=7)(img)
    padded = np.pad(hwc(img), ((pads, pads), (pads, pads), (0, 0)), constant_values=7).reshape(
        (img.shape[0] + 2 * pads, img.shape[1] + 2 * pads) + img.shape[2:])
    assert out.shape == (h, w) + img.shape[2:] and out.dtype == np.uint8
    assert any(np.array_equal(out, padded[i:i + h, j:j + w])
               for i in range(padded.shape[0] - h + 1) for j in range(padded.shape[1] - w + 1))


def test_random_crop_reaches_every_offset():
    img = np.arange(1, 17, dtype=np.uint8).reshape(4, 4)  # distinct, nonzero: a crop's values give its offset
    padded = np.pad(img, 1)
    crop = T.RandomCrop(3, padding=1)
    tg.manual_seed(0)
    seen = set()
    for _ in range(300):
        out = crop(img)
        offsets = [(i, j) for i in range(4) for j in range(4) if np.array_equal(out, padded[i:i + 3, j:j + 3])]
        assert len(offsets) == 1
        seen.add(offsets[0])
    assert seen == {(i, j) for i in range(4) for j in range(4)}


def test_random_crop_pad_if_needed_pads_both_sides_by_the_shortfall():
    img = np.arange(1, 16, dtype=np.uint8).reshape(3, 5)
    out = T.RandomCrop((5, 5), pad_if_needed=True)(img)  # height 3 < 5: 2 rows on top and 2 below, then a crop
    padded = np.pad(img, ((2, 2), (0, 0)))
    assert any(np.array_equal(out, padded[i:i + 5]) for i in range(3))
    with pytest.raises(ValueError, match=r"crop size \(5, 5\) is larger than input image size \(3, 5\)"):
        T.RandomCrop(5)(img)


def test_random_crop_of_a_tensor_crops_its_last_two_dims():
    x = np.random.default_rng(0).random((2, 3, 6, 5)).astype(np.float32)
    tg.manual_seed(3)
    out = T.RandomCrop((4, 2))(Tensor(x))
    assert isinstance(out, Tensor) and out.shape == (2, 3, 4, 2)
    assert any(np.array_equal(out.numpy(), x[..., i:i + 4, j:j + 2]) for i in range(3) for j in range(4))


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
@pytest.mark.parametrize("padding, sides", [(2, (2, 2, 2, 2)), ((1, 3), (1, 3, 1, 3)), ((0, 1, 2, 3), (0, 1, 2, 3))])
def test_pad_matches_np_pad(mode, padding, sides):
    img = np.arange(4 * 5 * 2, dtype=np.uint8).reshape(4, 5, 2)
    left, top, right, bottom = sides
    expected = np.pad(img, ((top, bottom), (left, right), (0, 0)), mode=mode)
    np.testing.assert_array_equal(T.Pad(padding, padding_mode=mode)(img), expected)
    chw = TF.pad(Tensor(img.transpose(2, 0, 1)), padding, padding_mode=mode)
    np.testing.assert_array_equal(chw.numpy(), expected.transpose(2, 0, 1))


@pytest.mark.parametrize("mode, torch_mode", [("constant", "constant"), ("edge", "replicate"), ("reflect", "reflect")])
def test_pad_matches_torch(mode, torch_mode):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).random((2, 5, 6))
    expected = torch.nn.functional.pad(torch.tensor(x), (1, 3, 2, 0), mode=torch_mode)  # left, right, top, bottom
    np.testing.assert_array_equal(TF.pad(Tensor(x), [1, 2, 3, 0], padding_mode=mode).numpy(), expected.numpy())


def test_pad_fill_per_channel_and_negative_padding_crops():
    img = np.ones((2, 2, 3), np.uint8)
    out = TF.pad(img, 1, fill=(10, 20, 30))
    assert out.shape == (4, 4, 3) and out[0, 0].tolist() == [10, 20, 30] and out[1, 1].tolist() == [1, 1, 1]
    img = np.arange(20).reshape(4, 5)
    np.testing.assert_array_equal(TF.pad(img, [-1, 0, 2, -2]), np.pad(img[:2, 1:], ((0, 0), (0, 2))))
    np.testing.assert_array_equal(TF.crop(img, 3, 3, 2, 3), [[18, 19, 0], [0, 0, 0]])  # outside the image: 0


def test_pad_and_crop_errors():
    img = np.zeros((3, 3, 2), np.uint8)
    with pytest.raises(ValueError, match="1, 2, or 4 element tuple, not a 3"):
        T.Pad((1, 2, 3))
    with pytest.raises(ValueError, match="padding_mode.*'wrap'"):
        TF.pad(img, 1, padding_mode="wrap")
    with pytest.raises(ValueError, match="fill has 3 values but the image has 2 channels"):
        TF.pad(img, 1, fill=(1, 2, 3))
    with pytest.raises(TypeError, match="padding should be an int"):
        T.RandomCrop(2, padding=1.5)
    with pytest.raises(ValueError, match=r"two dimensions \(h, w\)"):
        T.RandomCrop((1, 2, 3))
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, C\).*\(1, 3, 3, 2\)"):
        T.RandomCrop(2)(img[None])
    with pytest.raises(TypeError, match="img should be a NumPy array.*list"):
        T.RandomHorizontalFlip()([[1, 2]])


# ================================================================ flips

@given(img=uint8_images())
def test_flips_with_probability_0_and_1(img):
    for flip, mirrored in ((T.RandomHorizontalFlip, img[:, ::-1]), (T.RandomVerticalFlip, img[::-1])):
        assert np.array_equal(flip(p=0.0)(img), img) and np.array_equal(flip(p=1.0)(img), mirrored)
    chw = Tensor(hwc(img).transpose(2, 0, 1))
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(chw).numpy(), chw.numpy()[..., ::-1])


def test_flip_half_the_time():
    img = np.arange(6).reshape(2, 3)
    tg.manual_seed(0)
    flipped = sum(bool(np.array_equal(T.RandomHorizontalFlip()(img), img[:, ::-1])) for _ in range(400))
    assert 150 < flipped < 250  # binomial(400, 0.5): 8 standard deviations either side


# ================================================================ rotation and affine maps

@given(img=uint8_images(), k=st.integers(-3, 4), interpolation=st.sampled_from([NEAREST, BILINEAR]))
def test_rotation_by_right_angles_is_rot90(img, k, interpolation):
    """Counter-clockwise for a positive angle; with expand the output takes the turned shape, and a
    square image turns in place about its centre."""
    if (img.shape[0] - img.shape[1]) % 2:  # else, as in torchvision, the turned image sits half a pixel off
        img = img[:-1] if img.shape[0] > 1 else img[:, :-1]
    turn = T.RandomRotation((90 * k, 90 * k), interpolation=interpolation, expand=True)
    np.testing.assert_array_equal(turn(img), np.rot90(img, k))
    square = img[:min(img.shape[:2]), :min(img.shape[:2])]
    np.testing.assert_array_equal(T.RandomRotation((90 * k, 90 * k))(square), np.rot90(square, k))
    chw = Tensor(hwc(square).transpose(2, 0, 1))
    np.testing.assert_array_equal(T.RandomRotation((90 * k, 90 * k))(chw).numpy(), np.rot90(chw.numpy(), k, (1, 2)))


def test_rotation_about_a_given_center_with_fill():
    img = np.arange(1, 17, dtype=np.uint8).reshape(4, 4)
    out = TF.rotate(img, 180, center=[1, 1], fill=99)  # the point (1, 1) is the corner of pixels 0, 1, 4, 5
    expected = np.full((4, 4), 99, np.uint8)
    expected[:2, :2] = img[1::-1, 1::-1]
    np.testing.assert_array_equal(out, expected)


@given(img=uint8_images())
def test_identity_affine_returns_the_image(img):
    np.testing.assert_array_equal(TF.affine(img, 0.0, [0, 0], 1.0, [0.0, 0.0]), img)
    np.testing.assert_array_equal(T.RandomAffine(0, interpolation=BILINEAR)(img), img)
    assert TF.affine(img, 0.0, [0, 0], 1.0, 0.0).dtype == np.uint8


@given(img=uint8_images(2, 8), dx=st.integers(-3, 3), dy=st.integers(-3, 3))
def test_affine_translation_shifts_by_whole_pixels(img, dx, dy):
    expected = np.full_like(img, 5)
    h, w = img.shape[:2]
    for i, j in np.ndindex(h, w):  # output pixel (i, j) shows input pixel (i - dy, j - dx), if there is one
        if 0 <= i - dy < h and 0 <= j - dx < w:
            expected[i, j] = img[i - dy, j - dx]
    np.testing.assert_array_equal(TF.affine(img, 0, [dx, dy], 1.0, 0, fill=5), expected)


def test_affine_angle_turns_clockwise_unlike_rotate():
    img = np.arange(25, dtype=np.uint8).reshape(5, 5)
    np.testing.assert_array_equal(TF.affine(img, 90, [0, 0], 1.0, 0), np.rot90(img, -1))
    np.testing.assert_array_equal(TF.affine(img, 90, [0, 0], 1.0, 0), TF.rotate(img, -90))


def grid_sample_affine(torch, x: np.ndarray, angle, translate, scale, shear, center, mode, fill):
    """torchvision's affine warp of a (C, H, W) float64 image rebuilt on torch.nn.functional.grid_sample:
    the map's closed form (rotation, scale, shears sx, sy as torchvision documents it), inverted with
    np.linalg.inv; output pixel centres mapped back and sampled, points outside blended with `fill` by the
    sampled mask of ones. Returns the warp and where nearest sampling would be a tie."""
    c_, h, w = x.shape
    rot, sx, sy = (math.radians(v) for v in (angle, *shear))
    forward = scale * np.array([
        [math.cos(rot - sy) / math.cos(sy), -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)],
        [math.sin(rot - sy) / math.cos(sy), -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)]])
    pivot = np.array(center, float) - [w / 2, h / 2]
    ys, xs = np.meshgrid(np.arange(h) + 0.5 - h / 2, np.arange(w) + 0.5 - w / 2, indexing="ij")
    out_points = np.stack([xs, ys], axis=-1) - pivot - translate
    src = out_points @ np.linalg.inv(forward).T + pivot  # relative to the centre
    grid = torch.tensor(src / [w / 2, h / 2])[None]
    sample = lambda t: torch.nn.functional.grid_sample(t[None], grid, mode=mode, padding_mode="zeros",
                                                       align_corners=False)[0].numpy()
    warped = sample(torch.tensor(x))
    mask = sample(torch.ones(1, h, w, dtype=torch.float64))
    if mode == "nearest":
        mask = (mask >= 0.5).astype(float)
    index = src + [w / 2, h / 2] - 0.5
    tie = np.any(np.abs(index - np.floor(index) - 0.5) < 1e-6, axis=-1)
    return warped + (1 - mask) * fill, tie


@settings(max_examples=25)
@given(shape=st.tuples(st.integers(1, 3), st.integers(2, 9), st.integers(2, 9)),
       angle=st.floats(-180, 180), translate=st.tuples(st.integers(-3, 3), st.integers(-3, 3)),
       scale=st.floats(0.5, 2), shear=st.tuples(st.floats(-30, 30), st.floats(-30, 30)),
       center=st.tuples(st.floats(0, 9), st.floats(0, 9)), mode=st.sampled_from(["nearest", "bilinear"]),
       fill=st.floats(-2, 2))
def test_affine_matches_grid_sample(shape, angle, translate, scale, shear, center, mode, fill):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random(shape)
    expected, tie = grid_sample_affine(torch, x, angle, translate, scale, shear, center, mode, fill)
    out = TF.affine(Tensor(x), angle, list(translate), scale, list(shear), InterpolationMode(mode), fill,
                    list(center)).numpy()
    assert out.shape == shape and out.dtype == np.float64
    np.testing.assert_allclose(out[:, ~tie], expected[:, ~tie], atol=1e-9)


def test_random_affine_draws_within_its_ranges():
    tg.manual_seed(0)
    for _ in range(200):
        angle, (dx, dy), scale, (sx, sy) = T.RandomAffine.get_params([-10, 20], [0.1, 0.3], [0.8, 1.2],
                                                                     [-5, 5, 10, 15], [30, 10])
        assert -10 <= angle <= 20 and 0.8 <= scale <= 1.2 and -5 <= sx <= 5 and 10 <= sy <= 15
        assert isinstance(dx, int) and abs(dx) <= 3 and abs(dy) <= 3
    assert T.RandomAffine.get_params([0, 0], None, None, None, [5, 5]) == (0.0, (0, 0), 1.0, (0.0, 0.0))
    angles = [T.RandomRotation.get_params([-10, 10]) for _ in range(200)]
    assert min(angles) < -8 and max(angles) > 8 and all(-10 <= a <= 10 for a in angles)


# ================================================================ seeding, reprs, argument errors

AUGMENT = T.Compose([T.RandomCrop(8, padding=2), T.RandomHorizontalFlip(), T.RandomRotation(15),
                     T.RandomAffine(10, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5), T.ToTensor(),
                     T.Normalize((0.5,), (0.25,))])


@given(seed=st.integers(0, 2 ** 32 - 1))
def test_same_seed_same_augmentations(seed):
    img = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    tg.manual_seed(seed)
    first = [AUGMENT(img).numpy() for _ in range(3)]
    tg.manual_seed(seed)
    again = [AUGMENT(img).numpy() for _ in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert first[0].shape == (1, 8, 8) and first[0].dtype == np.float32


def test_reprs_read_as_torchvision():
    assert repr(AUGMENT) == (
        "Compose(\n"
        "    RandomCrop(size=(8, 8), padding=2)\n"
        "    RandomHorizontalFlip(p=0.5)\n"
        "    RandomRotation(degrees=[-15.0, 15.0], interpolation=nearest, expand=False, fill=0)\n"
        "    RandomAffine(degrees=[-10.0, 10.0], translate=(0.1, 0.1), scale=(0.9, 1.1), shear=[-5.0, 5.0])\n"
        "    ToTensor()\n"
        "    Normalize(mean=(0.5,), std=(0.25,))\n"
        ")")
    assert repr(T.RandomVerticalFlip(0.3)) == "RandomVerticalFlip(p=0.3)"
    assert repr(T.Lambda(abs)) == "Lambda()"
    assert repr(T.RandomRotation((0, 90), center=(1, 2), fill=3)) == \
        "RandomRotation(degrees=[0.0, 90.0], interpolation=nearest, expand=False, center=(1, 2), fill=3)"


@pytest.mark.parametrize("make, error, words", [
    (lambda: T.RandomRotation(-5), ValueError, "single number, it must be positive"),
    (lambda: T.RandomRotation((1, 2, 3)), ValueError, "degrees should be a sequence of length 2"),
    (lambda: T.RandomRotation(5, center=3), TypeError, "center should be a sequence"),
    (lambda: T.RandomRotation(5, fill={0}), TypeError, "Fill should be either a sequence or a number"),
    (lambda: T.RandomRotation(5, interpolation="bilinear"), TypeError, "InterpolationMode"),
    (lambda: T.RandomAffine(5, translate=(0.5, 1.5)), ValueError, "between 0 and 1"),
    (lambda: T.RandomAffine(5, scale=(0, 1)), ValueError, "scale values should be positive"),
    (lambda: T.RandomAffine(5, shear=(1, 2, 3)), ValueError, "shear should be a sequence of length 2 or 4"),
    (lambda: T.Lambda(3), TypeError, "lambd should be callable"),
    (lambda: TF.affine(np.zeros((2, 2)), 0, [0, 0], 0.0, 0), ValueError, "scale should be positive"),
    (lambda: TF.affine(np.zeros((2, 2)), 0, [0], 1.0, 0), TypeError, "translate should be a sequence of length 2"),
])
def test_argument_errors(make, error, words):
    with pytest.raises(error, match=words):
        make()


def test_compose_and_lambda_chain():
    pipeline = T.Compose([T.Lambda(lambda img: img + 1), T.RandomHorizontalFlip(p=1.0), T.ToTensor()])
    out = pipeline(np.array([[1, 2, 3]], np.uint8))
    np.testing.assert_array_equal(out.numpy(), np.array([[[4, 3, 2]]], np.float32) / 255)


# ================================================================ datasets: files written from the formats' specs

def idx_file(array: np.ndarray) -> bytes:
    """An IDX file of uint8 data: 0, 0, type 0x08, the number of dims, the big-endian sizes, the bytes."""
    return struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_mnist(folder: Path, n_train: int, n_test: int, gz: bool, seed: int = 0) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    split = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        for kind, idx, array in (("images", 3, images), ("labels", 1, labels)):
            raw = idx_file(array)
            name = f"{prefix}-{kind}-idx{idx}-ubyte"
            (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(raw) if gz else raw)
        split[prefix] = images, labels
    return split


@pytest.mark.parametrize("cls", [datasets.MNIST, datasets.FashionMNIST, datasets.KMNIST])
@pytest.mark.parametrize("layout", ["raw", "root"])
@pytest.mark.parametrize("gz", [False, True])
def test_mnist_likes_read_both_layouts(tmp_path, cls, layout, gz):
    folder = tmp_path / cls.__name__ / "raw" if layout == "raw" else tmp_path
    files = write_mnist(folder, 6, 4, gz)
    for train, prefix in ((True, "train"), (False, "t10k")):
        images, labels = files[prefix]
        ds = cls(str(tmp_path), train=train)
        assert len(ds) == len(images) and ds.train is train
        assert ds.data.dtype == np.uint8 and ds.data.shape == images.shape and ds.targets.dtype == np.int64
        for i in range(len(ds)):
            image, target = ds[i]
            assert isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.shape == (28, 28)
            np.testing.assert_array_equal(image, images[i])
            assert type(target) is int and target == labels[i]
    assert len(ds.classes) == 10 and ds.class_to_idx[ds.classes[7]] == 7
    assert repr(ds).startswith(f"Dataset {cls.__name__}\n    Number of datapoints: 4\n    Root location: {tmp_path}\n"
                               f"    Split: Test")


def test_mnist_classes_as_torchvision():
    assert datasets.MNIST.classes[3] == "3 - three"
    assert datasets.FashionMNIST.classes[9] == "Ankle boot" and datasets.KMNIST.classes[1] == "ki"


def test_mnist_applies_transforms_and_follows_assigned_data(tmp_path):
    images, labels = write_mnist(tmp_path, 5, 1, gz=True)["train"]
    ds = datasets.MNIST(tmp_path, transform=T.Compose([T.ToTensor(), T.Normalize((0.5,), (0.5,))]),
                        target_transform=lambda y: y * 10)
    image, target = ds[2]
    assert isinstance(image, Tensor) and image.shape == (1, 28, 28) and target == labels[2] * 10
    np.testing.assert_allclose(image.numpy()[0], (images[2] / 255 - 0.5) / 0.5, rtol=1e-6, atol=1e-6)
    assert "Transform: Compose(" in repr(ds) and "Target transform:" in repr(ds)
    ds.data, ds.targets = ds.data[3:], ds.targets[3:]  # as scripts do to train on a subset
    assert len(ds) == 2 and ds[0][1] == labels[3] * 10


def test_mnist_missing_files_and_download(tmp_path):
    with pytest.raises(RuntimeError, match=re.escape("Dataset not found: MNIST needs train-images-idx3-ubyte")):
        datasets.MNIST(tmp_path)
    with pytest.raises(RuntimeError, match=f"{re.escape(str(tmp_path / 'FashionMNIST' / 'raw'))}.*does not download"):
        datasets.FashionMNIST(tmp_path, train=False, download=True)
    write_mnist(tmp_path, 2, 2, gz=False)
    assert len(datasets.MNIST(tmp_path, download=True)) == 2  # files in place: download=True is fine
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(RuntimeError, match="t10k-labels-idx1-ubyte"):
        datasets.MNIST(tmp_path, train=False)


def cifar_file(data: np.ndarray, labels: list[int]) -> bytes:
    """A CIFAR-10 python batch: a pickled dict, b"data" a (N, 3072) uint8 array (red, green, blue planes of
    32 rows each), b"labels" a list of ints."""
    return pickle.dumps({b"batch_label": b"testing", b"data": data, b"labels": labels,
                         b"filenames": [b"x.png"] * len(labels)}, protocol=2)


@pytest.mark.parametrize("layout", ["cifar-10-batches-py", "."])
def test_cifar10_reads_batches_as_hwc_uint8(tmp_path, layout):
    folder = tmp_path / layout
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    rows = {name: rng.integers(0, 256, (n, 3072), dtype=np.uint8)
            for name, n in (("data_batch_1", 3), ("data_batch_2", 2), ("test_batch", 4))}
    labels = {name: [int(v) for v in rng.integers(0, 10, len(r))] for name, r in rows.items()}
    for name in rows:
        (folder / name).write_bytes(cifar_file(rows[name], labels[name]))
    train = datasets.CIFAR10(tmp_path, transform=T.ToTensor())
    assert len(train) == 5 and train.targets == labels["data_batch_1"] + labels["data_batch_2"]
    assert train.data.shape == (5, 32, 32, 3) and train.data.dtype == np.uint8
    row = rows["data_batch_2"][1]  # item 4
    assert [train.data[4, 5, 7, c] for c in range(3)] == [row[c * 1024 + 5 * 32 + 7] for c in range(3)]
    image, target = train[4]
    assert image.shape == (3, 32, 32) and target == labels["data_batch_2"][1]
    assert image.numpy()[2, 5, 7] == np.float32(row[2 * 1024 + 5 * 32 + 7]) / np.float32(255)
    test = datasets.CIFAR10(tmp_path, train=False)
    raw_image, target = test[0]
    assert raw_image.shape == (32, 32, 3) and raw_image.dtype == np.uint8 and type(target) is int
    assert test.classes[3] == "cat" and test.class_to_idx["truck"] == 9 and "Split: Test" in repr(test)


def test_cifar10_missing_files(tmp_path):
    with pytest.raises(RuntimeError, match="Dataset not found: CIFAR10 needs test_batch.*cifar-10-batches-py"):
        datasets.CIFAR10(tmp_path, train=False)
    with pytest.raises(RuntimeError, match="data_batch_1.*download=True only uses files already there"):
        datasets.CIFAR10(tmp_path, download=True)


def system_fashion_mnist() -> Path | None:
    """Where the Debian package dataset-fashion-mnist put its IDX files, if it is installed."""
    for pattern in ("*fashion*mnist*/train-images-idx3-ubyte*", "*/*fashion*mnist*/train-images-idx3-ubyte*"):
        for path in sorted(Path("/usr/share").glob(pattern)):  # Debian: /usr/share/datasets/fashion-mnist
            return path.parent
    return None


@pytest.mark.skipif(system_fashion_mnist() is None, reason="the dataset-fashion-mnist package is not installed")
def test_fashion_mnist_from_the_debian_package():
    root = system_fashion_mnist()
    train, test = datasets.FashionMNIST(root), datasets.FashionMNIST(root, train=False)
    assert (len(train), len(test)) == (60000, 10000)
    assert train[0][0].shape == (28, 28) and sorted(set(test.targets.tolist())) == list(range(10))


def test_dataloader_over_transformed_mnist(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw", 10, 2, gz=True)
    augment = T.Compose([T.RandomCrop(28, padding=2), T.RandomRotation(10), T.ToTensor(),
                         T.Normalize((0.1307,), (0.3081,))])
    loader = DataLoader(datasets.MNIST(tmp_path, transform=augment), batch_size=4, shuffle=True, seed=0)
    batches = list(loader)
    assert [x.shape for x, _ in batches] == [(4, 1, 28, 28), (4, 1, 28, 28), (2, 1, 28, 28)]
    assert all(x.dtype == np.float32 and y.dtype == np.int64 for x, y in batches)
    assert sum(y.shape[0] for _, y in batches) == 10
