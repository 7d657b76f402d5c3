"""Seeing a computation graph: `draw_graph`/`render` draw it with Graphviz (graph.py).

    from tinygrad_cnn.viz import draw_graph, render
    render(draw_graph(loss, params=model), "graph.svg")
"""
from .graph import (CLUSTER_STYLE, FORMATS, LEGEND, RANKDIRS, STYLES, WARNING_STYLE, draw_graph, graph_template,
                    render)

__all__ = ["draw_graph", "render", "graph_template", "STYLES", "CLUSTER_STYLE", "WARNING_STYLE", "LEGEND", "RANKDIRS",
           "FORMATS"]
