"""The "Supported API" table of docs/coming-from-pytorch.md cannot claim what is not there:
every name it lists exists in tinygrad_cnn and under the same name in PyTorch."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

PAGE = Path(__file__).resolve().parent.parent / "docs" / "coming-from-pytorch.md"

# first column of the table -> (our module or class, PyTorch's)
NAMESPACES = {
    "`torch`": ("tinygrad_cnn", "torch"),
    "`torch.Tensor`": ("tinygrad_cnn:Tensor", "torch:Tensor"),
    "`torch.nn`": ("tinygrad_cnn.nn", "torch.nn"),
    "`torch.nn.Module`": ("tinygrad_cnn.nn:Module", "torch.nn:Module"),
    "`torch.nn.functional`": ("tinygrad_cnn.nn.functional", "torch.nn.functional"),
    "`torch.nn.init`": ("tinygrad_cnn.nn.init", "torch.nn.init"),
    "`torch.nn.utils`": ("tinygrad_cnn.nn.utils", "torch.nn.utils"),
    "`torch.optim`": ("tinygrad_cnn.optim", "torch.optim"),
    "`torch.optim.lr_scheduler`": ("tinygrad_cnn.optim.lr_scheduler", "torch.optim.lr_scheduler"),
    "`torch.utils.data`": ("tinygrad_cnn.utils.data", "torch.utils.data"),
    "`torch.autograd`": ("tinygrad_cnn.autograd", "torch.autograd"),
    "`torch.autograd.functional`": ("tinygrad_cnn.autograd.functional", "torch.autograd.functional"),
    "`torch.autograd.forward_ad`": ("tinygrad_cnn.autograd.forward_ad", "torch.autograd.forward_ad"),
    "`torch.func`": ("tinygrad_cnn.func", "torch.func"),
    "`torch.utils.checkpoint`": ("tinygrad_cnn.utils.checkpoint", "torch.utils.checkpoint"),
}


def resolve(path: str):
    module, _, attribute = path.partition(":")
    found = importlib.import_module(module)
    return getattr(found, attribute) if attribute else found


def table_rows() -> list[tuple[str, list[str]]]:
    text = PAGE.read_text()
    section = text.split("## Supported API", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] in NAMESPACES:
            rows.append((cells[0], re.findall(r"`([A-Za-z_][\w.]*)`", cells[1])))
    return rows


def test_every_namespace_has_a_row():
    assert sorted(name for name, _ in table_rows()) == sorted(NAMESPACES)


@pytest.mark.parametrize("namespace, names", table_rows(), ids=[row[0].strip("`") for row in table_rows()])
def test_listed_names_exist_here_and_in_torch(namespace, names):
    ours, theirs = (resolve(path) for path in NAMESPACES[namespace])
    assert names, f"{namespace}: empty row"
    assert [n for n in names if not hasattr(ours, n)] == [], f"{namespace}: listed but missing here"
    assert [n for n in names if not hasattr(theirs, n)] == [], f"{namespace}: listed but not PyTorch's"
    assert len(names) == len(set(names)), f"{namespace}: a name listed twice"


def test_the_vision_row_names_what_tinygrad_cnn_vision_has():
    from tinygrad_cnn.vision import datasets, transforms
    row = next(line for line in PAGE.read_text().splitlines() if line.startswith("| `torchvision`"))
    names = re.findall(r"`([A-Za-z_][\w.]*)`", row.split("|")[2])
    assert names and all(hasattr(transforms, n) or hasattr(datasets, n) for n in names
               if n not in ("transforms", "datasets", "transforms.functional"))
