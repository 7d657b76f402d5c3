"""The explorer: one self-contained HTML page to look inside a computation graph and watch
backprop run through it.

    from tinygrad_cnn.viz import explore
    explore(loss, params=model, path="graph.html")   # runs loss.backward() and records it

The page draws the forward graph (draw_graph's kinds, colours and legend), shows each node's
shapes, value and gradient statistics, what it saved for backward, its VJP formula and the line
of code that made it (if the forward ran inside detect_anomaly()), steps through the backward
pass in the engine's order with the memory still held, collapses and expands composite ops and
modules, and searches by name. data.py computes what it shows, page.py writes it, static/ holds
the page's HTML, CSS and JavaScript.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ...tensor import Tensor
from ..graph import check_depth, check_roots
from .data import check_backward_root, explorer_data, statistics
from .page import page_html, read_page_data


def explore(*roots: Tensor, params: Any = None, path: str | Path = "graph.html", run_backward: bool = True,
            depth: int | None = None) -> Path:
    """Write the explorer page for the graph behind `roots` to `path` (an .html file); returns the path.

    Args:
        roots: tensors with a graph; the first is the loss when `run_backward`.
        params: a Module (its parameters and submodules are named) or a name -> Tensor dict.
        path: where to write the page (.html or .htm).
        run_backward: run `roots[0].backward()` (roots[0] must have one element) under
            trace_backward, so the page can step through it and show every gradient. The leaves'
            `.grad` fill and the graph is freed, as after any backward(). A graph already
            backwarded is shown as far as it is known, with a note saying so.
        depth: module calls nested `depth` deep and deeper start collapsed, each drawn as one node,
            as in draw_graph(group_modules=True, depth=depth): 0 the model as one node, 1 its
            children (`layer1 (Sequential)`); None starts with every module call expanded. The
            page's toolbar changes it, and double-clicks open single calls.
    """
    check_roots(roots, "explore")
    if not isinstance(path, (str, Path)):
        raise TypeError(f"explore: path must be a str or a Path, got {type(path).__name__}")
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"explore: path must end in .html (the page is HTML), got {str(path)!r}")
    if not isinstance(run_backward, bool):
        raise TypeError(f"explore: run_backward must be True or False, got {run_backward!r}")
    check_depth(depth, "explore")
    if run_backward:
        check_backward_root(roots[0])
    data = explorer_data(roots, params=params, run_backward=run_backward, depth=depth)
    shapes = ", ".join(str(tuple(root.shape)) for root in roots)
    path.write_text(page_html(data, f"graph of {shapes}"), encoding="utf-8")
    return path


__all__ = ["explore", "explorer_data", "page_html", "read_page_data", "statistics"]
