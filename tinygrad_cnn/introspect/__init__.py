"""Seeing inside autodiff: tensor and module hooks, a step-by-step backward trace, anomaly detection.

    with trace_backward() as trace:      # every node's VJP, in the order it runs
        loss.backward()
    print(trace)                         # op, gradient shapes and norms, time
    trace.to_graph()                     # the same as a graphviz Digraph

    with detect_anomaly():               # RuntimeError at the first op making NaN/Inf,
        loss = model(x).sum()            # naming the op and the line of user code that made it
        loss.backward()

autograd.py only holds the switches (one flag test per op while they are off). What runs when
they are on lives here, one module per tool: `hooks` (Tensor.register_hook, nn.Module's forward
and full backward hooks), `trace` (trace_backward, and the timed step the engine reports to it)
and `anomaly` (detect_anomaly).
"""
from .anomaly import check_forward, detect_anomaly
from .hooks import call_module, run_tensor_hooks
from .trace import (BackwardStep, BackwardTrace, grad_text, norm, parameter_names, report_step, timed_vjp,
                    trace_backward)

__all__ = ["BackwardStep", "BackwardTrace", "call_module", "check_forward", "detect_anomaly", "grad_text", "norm",
           "parameter_names", "report_step", "run_tensor_hooks", "timed_vjp", "trace_backward"]
