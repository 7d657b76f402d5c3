"""Make the pictures of docs/visualization.md and docs/introspection.md (committed in docs/images).

    python examples/make_doc_images.py [out_dir]     # default: docs/images
"""
import argparse
from pathlib import Path

import numpy as np

import tinygrad_cnn as tg
import tinygrad_cnn.functional as F
from tinygrad_cnn import nn
from tinygrad_cnn.models import LeNet5, ResNet20
from tinygrad_cnn.viz import draw_graph, render
from visualize_graph import lenet_loss  # this script's neighbour in examples/


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default=str(Path(__file__).resolve().parent.parent / "docs" / "images"))
    out = Path(parser.parse_args().out_dir)
    out.mkdir(parents=True, exist_ok=True)

    # LeNet-5's training loss, one node per layer and then every primitive
    model, loss = lenet_loss(batch_size=8)
    render(draw_graph(loss, params=model), out / "lenet5_collapsed.svg")
    render(draw_graph(loss, params=model, collapse=False), out / "lenet5_expanded.svg")

    # after a backward: every layer's output keeps its gradient (a forward hook asks for it, and
    # keeps the output: a graph holds no tensor that its VJPs do not need)
    tg.manual_seed(0)
    model, outputs = LeNet5(), []

    def keep_grad(module, inputs, output):
        output.retain_grad()
        outputs.append(output)

    for layer in model.children():
        layer.register_forward_hook(keep_grad)
    images, labels = tg.randn(8, 1, 28, 28), tg.tensor(np.arange(8))
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    render(draw_graph(loss, params=model, show_grads=True), out / "lenet5_grads.svg")

    # the steps of one backward pass through a two-layer network
    tg.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with tg.trace_backward(params=net) as trace:
        F.mse_loss(net(tg.randn(5, 3)), tg.zeros(5, 2)).backward()
    render(trace.to_graph(show_times=False), out / "backward_trace.svg")  # times would change every run

    # ResNet-20 grouped by module: its blocks as single nodes, identical consecutive ones folded
    tg.manual_seed(0)
    resnet = ResNet20()
    loss = F.cross_entropy(resnet(tg.randn(2, 3, 32, 32)), tg.tensor([3, 5]))
    render(draw_graph(loss, params=resnet, group_modules=True, depth=2, fold=True), out / "resnet20_modules.svg")
    print("wrote", ", ".join(sorted(p.name for p in out.glob("*.svg"))), "to", out)


if __name__ == "__main__":
    main()
