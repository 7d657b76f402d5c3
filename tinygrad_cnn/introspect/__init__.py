"""Seeing inside autodiff: tensor and module hooks, a step-by-step backward trace, anomaly detection.

    with trace_backward() as trace:      # every node's VJP, in the order it runs
        loss.backward()
    print(trace)                         # op, gradient shapes and norms, time
    trace.to_graph()                     # the same as a graphviz Digraph

    with detect_anomaly():               # RuntimeError at the first op making NaN/Inf,
        loss = model(x).sum()            # naming the op and the line of user code that made it
        loss.backward()

The engine (autograd/) runs tensor hooks as node pre-hooks, and reports each backward step to
the observers registered with `autograd.graph.register_backward_observer`; anomaly mode is
autograd's own (autograd/anomaly.py). Here, one module per tool: `hooks` (nn.Module's forward
and full backward hooks) and `trace` (trace_backward).
"""
from ..autograd.anomaly import detect_anomaly
from .hooks import call_module
from .trace import BackwardStep, BackwardTrace, grad_text, norm, parameter_names, trace_backward

__all__ = ["BackwardStep", "BackwardTrace", "call_module", "detect_anomaly", "grad_text", "norm", "parameter_names",
           "trace_backward"]
