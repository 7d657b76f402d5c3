"""Module hooks: functions a module call (nn.Module's register_forward_hook and
register_full_backward_hook) runs, with PyTorch's semantics. nn.Module.__call__ calls
`call_module`; the backward hooks ride on tensor hooks, which the engine runs."""
from __future__ import annotations

from typing import Any

from ..autograd.function import Primitive
from ..autograd.grad_mode import is_grad_enabled
from ..tensor import Tensor


class BackwardHookFunction(Primitive):
    """Identity (y = x, dL/dx = g): marks a module's inputs and outputs in the graph so a
    full backward hook can see the gradients that cross the module's boundary."""

    returns_view = True

    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, g):
        return g

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        return tangents[0]


class _BackwardHookCall:
    """The full backward hooks of one module call. The gradients w.r.t. the call's outputs are
    kept as they arrive; the hooks run once those w.r.t. its inputs are complete (or, if no input
    requires grad, once the outputs' are), as PyTorch's `register_full_backward_hook`."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def wrap_inputs(self, args: tuple) -> tuple:
        """Positional Tensor args that require grad pass through an identity node with a hook."""
        args = list(args)
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        self.grad_inputs: list[Tensor | None] = [None] * len(positions)
        self.inputs_expected = frozenset(k for k, i in enumerate(positions) if args[i].requires_grad)
        self.inputs_waiting = set(self.inputs_expected)
        for k in self.inputs_expected:
            args[positions[k]] = BackwardHookFunction.apply(args[positions[k]])
            args[positions[k]].register_hook(self._input_hook(k))
        return tuple(args)

    def wrap_outputs(self, output: Any) -> Any:
        outputs = list(output) if isinstance(output, tuple) else [output]
        self.grad_outputs: list[Tensor | None] = [None] * len(outputs)
        self.outputs_expected = frozenset(k for k, y in enumerate(outputs)
                                          if isinstance(y, Tensor) and y.requires_grad)
        self.outputs_waiting = set(self.outputs_expected)
        for k in self.outputs_expected:
            outputs[k] = BackwardHookFunction.apply(outputs[k])
            outputs[k].register_hook(self._output_hook(k))
        return tuple(outputs) if isinstance(output, tuple) else outputs[0]

    def _output_hook(self, k: int):
        def hook(g: Tensor) -> None:
            self.grad_outputs[k] = g
            self.outputs_waiting.discard(k)
            if not self.inputs_expected and not self.outputs_waiting:
                self._run_hooks()
        return hook

    def _input_hook(self, k: int):
        def hook(g: Tensor) -> Tensor | None:
            self.grad_inputs[k] = g
            self.inputs_waiting.discard(k)
            if self.inputs_waiting:
                return None
            replaced = self._run_hooks()
            return None if replaced is None else replaced[k]
        return hook

    def _run_hooks(self) -> tuple[Tensor | None, ...] | None:
        """Run the module's hooks in order, each seeing the grad_input the previous one returned;
        then forget the gradients, ready for another backward pass through the same graph."""
        grad_input, grad_output = tuple(self.grad_inputs), tuple(self.grad_outputs)
        replaced = None
        for hook in list(self.module._backward_hooks.values()):
            result = hook(self.module, grad_input, grad_output)
            if result is None:
                continue
            result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
            if len(result) != len(grad_input):
                raise RuntimeError(f"full backward hook of {type(self.module).__name__}: returned {len(result)} "
                                   f"gradients for {len(grad_input)} tensor inputs")
            grad_input = replaced = result
        if replaced is not None:
            self._check_replacement(replaced)
        self.grad_inputs = [None] * len(self.grad_inputs)
        self.grad_outputs = [None] * len(self.grad_outputs)
        self.inputs_waiting, self.outputs_waiting = set(self.inputs_expected), set(self.outputs_expected)
        return replaced

    def _check_replacement(self, replaced: tuple) -> None:
        # when the hooks run, the gradients of all inputs but the last to arrive have flowed on
        # already, so only a module's one input that requires grad can get a new gradient
        for k, (old, new) in enumerate(zip(self.grad_inputs, replaced)):
            if new is not old and not (len(self.inputs_expected) == 1 and k in self.inputs_expected):
                raise RuntimeError(
                    f"full backward hook of {type(self.module).__name__}: returned a new grad_input[{k}], but a "
                    "replacement is supported only for the input of a module with one tensor input that "
                    "requires grad")


def call_module(module: Any, args: tuple, kwargs: dict) -> Any:
    """module(*args, **kwargs) with its hooks: forward pre-hooks may replace the arguments, full
    backward hooks mark the inputs, forward runs, forward hooks see (module, args, output) and may
    replace the output, then the outputs are marked for the backward hooks (PyTorch's order)."""
    with_kwargs = module._hooks_with_kwargs
    for hook_id, hook in list(module._forward_pre_hooks.items()):
        if hook_id in with_kwargs:
            result = hook(module, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(f"forward pre-hook of {type(module).__name__} registered with_kwargs must "
                                       f"return None or a tuple (args, kwargs), got {type(result).__name__}")
                args, kwargs = result
        else:
            result = hook(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
    backward = None
    if module._backward_hooks and is_grad_enabled():
        backward = _BackwardHookCall(module)
        args = backward.wrap_inputs(args)
    output = module.forward(*args, **kwargs)
    for hook_id, hook in list(module._forward_hooks.items()):
        result = hook(module, args, kwargs, output) if hook_id in with_kwargs else hook(module, args, output)
        if result is not None:
            output = result
    if backward is not None:
        output = backward.wrap_outputs(output)
    return output
