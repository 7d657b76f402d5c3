"""Seeing a computation graph: `draw_graph`/`render` draw it with Graphviz (graph.py), grouped by the
module calls that made it if asked (modules.py); `explore` writes an interactive HTML page of it,
to step through the backward pass (explorer/).

    from tinygrad_cnn.viz import draw_graph, explore, render
    render(draw_graph(loss, params=model), "graph.svg")
    explore(loss, params=model, path="graph.html")
"""
from .graph import (CLUSTER_STYLE, FORMATS, LEGEND, MODULE_CLUSTER_STYLE, RANKDIRS, STYLES, WARNING_STYLE, draw_graph,
                    graph_template, render)
from .modules import Fold, ModuleGroup, ModuleView, fold_runs, module_names, module_tree
from .explorer import explore

__all__ = ["draw_graph", "render", "graph_template", "STYLES", "CLUSTER_STYLE", "WARNING_STYLE", "LEGEND", "RANKDIRS",
           "FORMATS", "MODULE_CLUSTER_STYLE", "ModuleGroup", "Fold", "ModuleView", "module_names", "module_tree",
           "fold_runs", "explore"]
