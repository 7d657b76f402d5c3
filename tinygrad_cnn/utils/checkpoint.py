"""Activation checkpointing, as torch.utils.checkpoint: run part of a model without keeping what its
backward needs, and compute it again during backward. Memory for time: the activations inside a
checkpointed call are not held between forward and backward, at the cost of one more forward of it.

    out = checkpoint(block, x, use_reentrant=False)              # any function of tensors
    out = checkpoint_sequential(model, 4, x, use_reentrant=False)  # an nn.Sequential in 4 segments

Two variants, as PyTorch (which recommends the first):

    use_reentrant=False  The call runs and records its graph as usual, inside `saved_tensors_hooks`
                         whose pack hook keeps a handle (`_Holder`) for each value an op saves and
                         drops the data. The first time backward unpacks any handle, the function
                         runs once more, under hooks that hand each saved value to its handle; each
                         handle gives its value to its VJP and forgets it. Works with grad(),
                         `inputs=`, nested checkpoints and keyword arguments.
    use_reentrant=True   A Function whose forward runs the function under no_grad and whose backward
                         runs it again with grad on and calls backward() on its outputs: parameters
                         get their gradients inside that inner backward. Positional arguments only.
                         PyTorch refuses it under grad() or backward(inputs=...); here it is not
                         refused, but the inner backward still fills the parameters' `.grad`: use
                         use_reentrant=False there.

Left unspecified, `use_reentrant` is True with a warning, as in PyTorch 2.13.

The recomputation repeats the forward's random draws (dropout masks): it runs from the state the
global generator (`tinygrad_cnn.manual_seed`) had at the forward, unless `preserve_rng_state=False`;
a `tinygrad_cnn.Generator` passed explicitly as `generator=` is not rewound (PyTorch does not either).
What the function changes besides its result happens twice, as in PyTorch: a BatchNorm in training
mode moves its running statistics (and counts `num_batches_tracked`) once in the forward and once more
in the recomputation.
"""
from __future__ import annotations

import contextlib
import warnings
import weakref
from typing import Any, Callable, ContextManager, Iterator, Sequence

from ..autograd import backward as autograd_backward
from ..autograd.function import Function
from ..autograd.grad_mode import enable_grad
from ..autograd.graph import Recomputed, SavedTensor, VersionCounter, base_buffer, current_pack_hooks, \
    saved_tensors_hooks
from ..nn import Module, Sequential
from ..rng import get_generator
from ..tensor import Tensor

__all__ = ["CheckpointError", "checkpoint", "checkpoint_sequential", "noop_context_fn"]

DETERMINISM_CHECKS = ("default", "none")


class CheckpointError(RuntimeError):
    """The recomputation did not save what the forward saved (the function is not deterministic)."""


def noop_context_fn() -> tuple[ContextManager, ContextManager]:
    """checkpoint's default `context_fn`: nothing around the forward, nothing around the recomputation."""
    return contextlib.nullcontext(), contextlib.nullcontext()


def checkpoint(function: Callable, *args: Any, use_reentrant: bool | None = None,
               context_fn: Callable[[], tuple[ContextManager, ContextManager]] = noop_context_fn,
               determinism_check: str = "default", debug: bool = False, early_stop: bool = True,
               preserve_rng_state: bool = True, **kwargs: Any) -> Any:
    """function(*args, **kwargs), keeping none of what its backward needs: backward runs it again.

    Args:
        function: what to run; its Tensor results are differentiable as usual.
        use_reentrant: False for the saved-tensor-hooks variant, True for the Function one (see the
            module docstring); None warns and means True, as PyTorch 2.13.
        context_fn: returns two context managers, entered around the forward and around the
            recomputation (use_reentrant=False only).
        determinism_check: 'default' compares the shape and dtype of each value the recomputation
            saves with the forward's and raises CheckpointError if one differs; 'none' does not.
        debug: with a CheckpointError, list the shapes and dtypes saved by the forward and by the
            recomputation (use_reentrant=False only).
        early_stop: stop the recomputation once it has saved everything backward needs.
        preserve_rng_state: recompute from the random state of the forward (same dropout masks).
        kwargs: keyword arguments for `function` (use_reentrant=False only).
    """
    if use_reentrant is None:
        warnings.warn("tinygrad_cnn.utils.checkpoint: the use_reentrant parameter should be passed explicitly. "
                      "use_reentrant=False is recommended; left out, it is True (PyTorch's default, which PyTorch "
                      "plans to turn into an error).", stacklevel=2)
        use_reentrant = True
    if use_reentrant:
        if kwargs:
            raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
        if context_fn is not noop_context_fn or debug is not False:
            raise ValueError("Passing `context_fn` or `debug` is only supported when use_reentrant=False.")
        return _ReentrantCheckpoint.apply(function, preserve_rng_state, *args)
    if debug and context_fn is not noop_context_fn:
        raise ValueError("debug=True is incompatible with non-default context_fn")
    if determinism_check not in DETERMINISM_CHECKS:
        raise ValueError(f"determinism_check should be one of {list(DETERMINISM_CHECKS)}, but got {determinism_check}")
    forward_context, recompute_context = context_fn()
    frame = _Frame(function, args, kwargs, preserve_rng_state, recompute_context, determinism_check == "default",
                   early_stop, debug)
    with saved_tensors_hooks(frame.pack, frame.unpack), forward_context:
        return function(*args, **kwargs)


def checkpoint_sequential(functions: Sequential | Sequence[Callable], segments: int, input: Tensor,
                          use_reentrant: bool | None = None, **kwargs: Any) -> Any:
    """Run `functions` (an nn.Sequential or a list of modules/functions) one after the other on `input`,
    in `segments` segments of len(functions) // segments each (the last takes the rest): every segment
    but the last is checkpointed, as torch.utils.checkpoint.checkpoint_sequential.

    kwargs: only `preserve_rng_state` (default True).
    """
    if use_reentrant is None:
        warnings.warn("tinygrad_cnn.utils.checkpoint.checkpoint_sequential: the use_reentrant parameter should be "
                      "passed explicitly. use_reentrant=False is recommended; left out, it is True (PyTorch's "
                      "default, which PyTorch plans to turn into an error).", stacklevel=2)
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
    if isinstance(functions, Sequential):
        functions = list(functions.children())
    if not 1 <= segments <= len(functions):
        raise ValueError(f"checkpoint_sequential: segments must be between 1 and the number of functions "
                         f"({len(functions)}), got {segments}")

    def run(start: int, end: int) -> Callable:
        segment = functions[start:end + 1]
        if all(isinstance(f, Module) for f in segment):  # a Module: the memory ledger sees its parameters
            return Sequential(*segment)

        def forward(x: Any) -> Any:
            for f in segment:
                x = f(x)
            return x
        return forward

    size = len(functions) // segments
    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(run(start, end), input, use_reentrant=use_reentrant, preserve_rng_state=preserve)
    return run(end + 1, len(functions) - 1)(input)


# ---------------------------------------------------------------- use_reentrant=False

class _StopRecomputation(Exception):
    """Raised by the recomputation's pack hook once every handle has its value (early_stop)."""


class _Holder(Recomputed):
    """What a node keeps of one value saved inside a checkpoint() call: no data (the ledger reads its
    shape, dtype and the bytes recomputing it takes: 0 for one of the call's inputs), and between the
    recomputation and the VJP that unpacks it, the value."""

    __slots__ = ("value", "__weakref__")


class _Frame:
    """One non-reentrant checkpoint() call: how to run it again, and the handles of what it saved."""

    def __init__(self, function: Callable, args: tuple, kwargs: dict, preserve_rng_state: bool,
                 recompute_context: ContextManager, check: bool, early_stop: bool, debug: bool) -> None:
        self.function, self.kwargs, self.recompute_context = function, kwargs, recompute_context
        self.check, self.early_stop, self.debug = check, early_stop, debug
        self.rng_state = get_generator().bit_generator.state if preserve_rng_state else None
        # The inputs are saved like any tensor: through an enclosing checkpoint's hooks, so that a nested
        # call does not keep its caller's activations, and checked for in-place changes when unpacked.
        hooks = current_pack_hooks()
        self.saved = [SavedTensor(a, None, hooks) if isinstance(a, Tensor) else a for a in args]
        # the memory of what the call keeps (its inputs, a Module's parameters): a value saved in it is
        # handed back as it is when the call runs again, so recomputing it takes no new memory
        self.input_memory = {id(base_buffer(t._array)) for t in (*args, *self.held) if isinstance(t, Tensor)}
        self.requires_grad = [isinstance(a, Tensor) and a.requires_grad for a in args]
        self.clock = VersionCounter.clock
        self.holders: list[weakref.ref[_Holder]] = []  # weakly: a node released by backward drops its handle
        self.saved_meta: list[tuple] = []  # (shape, dtype) of each value saved in the forward
        self.buffers: dict[int, tuple[weakref.ref, int]] = {}  # id(memory) -> (the memory, its number)

    def name(self) -> str:  # check_unchanged names the owner of a changed input
        return "checkpoint"

    @property
    def held(self) -> list:
        """What the call keeps to be run again, for the memory ledger: its inputs, and the parameters
        and buffers of the function if it is a Module (a closure's captures cannot be seen)."""
        module = self.function if isinstance(self.function, Module) else None
        own = [*module.parameters(), *module.buffers()] if module is not None else []
        return self.saved + own

    def pack(self, t: Tensor) -> _Holder:
        a = t._array
        memory = base_buffer(a)
        known = self.buffers.get(id(memory))
        if known is None or known[0]() is not memory:  # an id can be reused once its array is gone
            known = self.buffers[id(memory)] = (weakref.ref(memory), len(self.buffers))
        new_bytes = 0 if id(memory) in self.input_memory else a.nbytes
        holder = _Holder(self, known[1], tuple(a.shape), a.dtype, new_bytes)
        holder.value = None
        self.holders.append(weakref.ref(holder))
        self.saved_meta.append((tuple(a.shape), a.dtype))
        return holder

    def unpack(self, holder: _Holder) -> Any:
        if holder.value is None:
            self.recompute()
        value, holder.value = holder.value, None  # the VJP's reference is the last
        return value

    def recompute(self) -> None:
        """Run the function again (grad on, the forward's random state) and give each live handle its value."""
        # an input packed by an enclosing checkpoint comes back detached: it must require grad as it did,
        # so that the same ops record (and save) again
        args = [_requiring_grad(a.unpack(self), needs) if isinstance(a, SavedTensor) else a
                for a, needs in zip(self.saved, self.requires_grad)]
        recomputed: list[tuple] = []

        def pack(t: Tensor) -> None:
            index = len(recomputed)
            recomputed.append((tuple(t.shape), t.dtype))
            if index >= len(self.holders):
                raise CheckpointError("checkpoint: trying to save more tensors during recomputation than during the "
                                      "original forward pass." + self._log(recomputed))
            holder = self.holders[index]()
            if holder is not None:
                holder.value = t.detach() if t.requires_grad else t
            if self.early_stop and len(recomputed) == len(self.holders):
                raise _StopRecomputation

        with _random_state(self.rng_state), enable_grad(), saved_tensors_hooks(pack, _unpack_never), \
                self.recompute_context:
            try:
                self.function(*args, **self.kwargs)
            except _StopRecomputation:
                pass
        if len(recomputed) != len(self.holders):
            raise CheckpointError(f"checkpoint: a different number of tensors was saved during the original forward "
                                  f"({len(self.holders)}) and the recomputation ({len(recomputed)}): the function "
                                  "must do the same work each time it runs." + self._log(recomputed))
        if self.check:
            different = [f"tensor at position {i}: saved {saved}, recomputed {again}"
                         for i, (saved, again) in enumerate(zip(self.saved_meta, recomputed))
                         if saved != again and self.holders[i]() is not None]
            if different:
                raise CheckpointError("checkpoint: recomputed values for the following tensors have different shapes "
                                      "or dtypes than during the forward pass:\n" + "\n".join(different)
                                      + self._log(recomputed))

    def _log(self, recomputed: list[tuple]) -> str:
        if not self.debug:
            return " (checkpoint(..., debug=True) lists what each pass saved)"
        return (f"\nsaved in the forward (shape, dtype): {self.saved_meta}"
                f"\nsaved in the recomputation: {recomputed}")


def _requiring_grad(t: Tensor, requires_grad: bool) -> Tensor:
    return t.detach().requires_grad_() if requires_grad and not t.requires_grad else t


def _unpack_never(_: Any) -> Any:
    raise AssertionError("the recomputation's graph is never backed through")


@contextlib.contextmanager
def _random_state(state: dict | None) -> Iterator[None]:
    """Inside the block, the global generator draws from `state` (None: as it is); after it, it goes
    on from where it was before."""
    if state is None:
        yield
        return
    generator = get_generator()
    outer = generator.bit_generator.state
    generator.bit_generator.state = state
    try:
        yield
    finally:
        generator.bit_generator.state = outer


# ---------------------------------------------------------------- use_reentrant=True

class _ReentrantCheckpoint(Function):
    """Forward: the function under no_grad. Backward: the function again with grad on, from detached
    inputs, then backward() through that graph; the gradients reaching the inputs are returned."""

    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, *args):
        if not any(isinstance(a, Tensor) and a.requires_grad for a in args):
            warnings.warn("None of the inputs have requires_grad=True. Gradients will be None", stacklevel=4)
        ctx.run_function = run_function
        ctx.rng_state = get_generator().bit_generator.state if preserve_rng_state else None
        # the tensors are saved (and checked for in-place changes when read); the other arguments kept as they are
        ctx.is_tensor = [isinstance(a, Tensor) for a in args]
        ctx.others = [None if tensor else a for a, tensor in zip(args, ctx.is_tensor)]
        ctx.save_for_backward(*[a for a in args if isinstance(a, Tensor)])
        return run_function(*args)

    @staticmethod
    def backward(ctx, *grads):
        saved = iter(ctx.saved_tensors)
        inputs = [_detached(next(saved)) if tensor else a for a, tensor in zip(ctx.others, ctx.is_tensor)]
        with _random_state(ctx.rng_state), enable_grad():
            outputs = ctx.run_function(*inputs)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        pairs = [(out, g) for out, g in zip(outputs, grads) if isinstance(out, Tensor) and out.requires_grad]
        if not pairs:
            raise RuntimeError("none of output has requires_grad=True, this checkpoint() is not necessary")
        autograd_backward([out for out, _ in pairs], [g for _, g in pairs])
        return (None, None) + tuple(x.grad if isinstance(x, Tensor) else None for x in inputs)


def _detached(t: Tensor) -> Tensor:
    """A new leaf of t's data, requiring grad if t does: where the inner backward stops."""
    return t.detach().requires_grad_(t.requires_grad)
