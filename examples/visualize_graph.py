"""Draw LeNet-5's training graph as SVG: collapsed (one node per layer) and expanded (the
primitive ops of each layer inside a frame), each with its legend. Needs Graphviz's `dot` program.

    python examples/visualize_graph.py [out_dir] [--batch-size 8]   # default out_dir: ./out, as tinygrad-cnn train
"""
import argparse
import re
import time
from pathlib import Path

import numpy as np

import tinygrad_cnn as tg
import tinygrad_cnn.functional as F
from tinygrad_cnn.models import LeNet5
from tinygrad_cnn.viz import draw_graph, render


def lenet_loss(batch_size: int):
    """A LeNet-5 and its cross-entropy loss on a batch of random 28x28 images."""
    tg.manual_seed(0)
    model = LeNet5()
    images, labels = tg.randn(batch_size, 1, 28, 28), tg.tensor(np.arange(batch_size) % 10)
    return model, F.cross_entropy(model(images), labels)


def count_nodes(graph) -> int:
    """The nodes drawn for the graph (n0, n1...), not the legend's samples."""
    return len(re.findall(r"^\s*n\d+ \[label=", graph.source, re.M))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=Path("out"),
                        help="where to write the SVGs (default: ./out, where tinygrad-cnn train writes too)")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    model, loss = lenet_loss(args.batch_size)
    for name, collapse in (("collapsed", True), ("expanded", False)):
        start = time.perf_counter()
        graph = draw_graph(loss, params=model, collapse=collapse)
        ms = (time.perf_counter() - start) * 1e3
        path = render(graph, out / f"lenet5_{name}.svg")
        print(f"wrote {path}: {count_nodes(graph)} nodes, drawn in {ms:.1f} ms")


if __name__ == "__main__":
    main()
