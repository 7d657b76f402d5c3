"""Module and Parameter: how models hold their weights, as in torch.nn.

Assigning a Parameter, a Module or (via `register_buffer`) a state Tensor to an
attribute registers it, so `parameters()`, `state_dict()` and `train()/eval()`
find everything by walking the tree of submodules.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple

import numpy as np

from ..autograd.grad_mode import modes, no_grad
from ..autograd.graph import RemovableHandle
from ..introspect import call_module
from ..scopes import ModuleCall
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module owns and trains: requires grad by default."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of layers and models: subclasses set attributes in `__init__` and define `forward`."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_hooks_with_kwargs", set())  # ids of hooks that also take the call's kwargs
        object.__setattr__(self, "_backward_hooks", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if name in self._buffers and not isinstance(value, (Parameter, Module)):
            self._buffers[name] = value
        elif name in self._parameters and not isinstance(value, Parameter):
            # as PyTorch: a plain Tensor here would silently drop out of parameters() and training
            if value is not None:
                raise TypeError(f"{type(self).__name__}: cannot assign a {type(value).__name__} to parameter "
                                f"'{name}' (wrap it in nn.Parameter, or assign None)")
            self._parameters[name] = None
        else:
            # a Parameter or Module replacing one of its kind keeps its place (state_dict order, ModuleList)
            home = self._parameters if isinstance(value, Parameter) else self._modules if isinstance(value, Module) \
                else None
            for registry in (self._parameters, self._buffers, self._modules):
                if registry is not home:
                    registry.pop(name, None)
            if home is not None:
                home[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A Tensor that is state but not trained (such as BatchNorm's running mean): in state_dict
        unless `persistent=False`."""
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"register_buffer: buffer name must be a non-empty string without '.', got {name!r}")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: cannot assign a {type(tensor).__name__} as buffer {name!r} "
                            "(a Tensor or None is required)")
        self._buffers[name] = tensor
        (self._non_persistent_buffers.discard if persistent else self._non_persistent_buffers.add)(name)
        object.__setattr__(self, name, tensor)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: cannot assign a {type(param).__name__} as parameter {name!r} "
                            "(an nn.Parameter or None is required)")
        setattr(self, name, param)
        self._parameters[name] = param

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {type(module).__name__} is not a Module")
        setattr(self, name, module)
        self._modules[name] = module

    # ------------------------------------------------------------ calling

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not modes.grad:  # no node is recorded: no call to mark
            return self._call_impl(*args, **kwargs)
        # the nodes recorded inside point to this call (scopes.py), for drawings grouped by module
        outer = modes.scope
        modes.scope = ModuleCall(self, outer)
        try:
            return self._call_impl(*args, **kwargs)
        finally:
            modes.scope = outer

    def _call_impl(self, *args: Any, **kwargs: Any) -> Any:
        """forward(*args, **kwargs), through the hooks if any are registered (introspect.call_module);
        PyTorch's name for the same step."""
        if self._forward_pre_hooks or self._forward_hooks or self._backward_hooks:
            return call_module(self, args, kwargs)
        return self.forward(*args, **kwargs)

    def _add_hook(self, hooks: OrderedDict, hook: Callable, prepend: bool, with_kwargs: bool) -> RemovableHandle:
        handle = RemovableHandle(hooks, hook)
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        if with_kwargs:
            self._hooks_with_kwargs.add(handle.id)
        return handle

    def register_forward_pre_hook(self, hook: Callable[..., Any], *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """hook(module, args) runs before each forward; a value it returns replaces `args` (a
        non-tuple is wrapped in one). With `with_kwargs`, hook(module, args, kwargs) and it may
        return a new (args, kwargs). `prepend` runs it before the hooks already registered."""
        return self._add_hook(self._forward_pre_hooks, hook, prepend, with_kwargs)

    def register_forward_hook(self, hook: Callable[..., Any], *, prepend: bool = False,
                              with_kwargs: bool = False) -> RemovableHandle:
        """hook(module, input, output) runs after each forward; `input` is the tuple of positional
        arguments, and an output the hook returns replaces the module's. With `with_kwargs`,
        hook(module, args, kwargs, output). `.remove()` on the handle unregisters it."""
        return self._add_hook(self._forward_hooks, hook, prepend, with_kwargs)

    def register_full_backward_hook(self, hook: Callable[[Module, tuple, tuple], Any]) -> RemovableHandle:
        """hook(module, grad_input, grad_output) runs when a backward pass has computed the gradients
        w.r.t. the module's positional Tensor inputs (`grad_input`, None for those that do not require
        grad) from those w.r.t. its outputs (`grad_output`); a tuple it returns replaces grad_input.
        As in PyTorch; `.remove()` on the handle unregisters it."""
        return RemovableHandle(self._backward_hooks, hook)

    # ------------------------------------------------------------ walking the tree

    def named_modules(self, prefix: str = "", remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """This module and every submodule, depth first, with dotted names ('' for this one).
        A submodule reachable by two names is listed once, unless `remove_duplicate` is False."""
        stack, seen = [(prefix, self)], set()
        while stack:
            name, module = stack.pop()
            if remove_duplicate and id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{n}" if name else n, m) for n, m in module._modules.items()]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        return (m for _, m in self.named_modules())

    def named_children(self) -> Iterator[tuple[str, Module]]:
        return iter(self._modules.items())

    def children(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def get_submodule(self, target: str) -> Module:
        """The submodule at a dotted path ('' is this module): model.get_submodule('features.0')."""
        module: Module = self
        for depth, name in enumerate(target.split(".") if target else []):
            child = module._modules.get(name)
            if child is None:
                where = ".".join(target.split(".")[:depth]) or type(self).__name__
                raise AttributeError(f"get_submodule: {where} has no submodule `{name}` (path {target!r})")
            module = child
        return module

    def _get_member(self, target: str, kind: str, op: str) -> Tensor:
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        member = getattr(module, kind).get(name)
        if member is None:
            raise AttributeError(f"{op}: {type(module).__name__} has no {kind[1:-1]} `{name}` (path {target!r})")
        return member

    def get_parameter(self, target: str) -> Parameter:
        return self._get_member(target, "_parameters", "get_parameter")

    def get_buffer(self, target: str) -> Tensor:
        return self._get_member(target, "_buffers", "get_buffer")

    def _named_members(self, kind: str, prefix: str, recurse: bool) -> Iterator[tuple[str, Tensor]]:
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        seen = set()
        for module_name, module in modules:
            for name, t in getattr(module, kind).items():
                if t is not None and id(t) not in seen:  # a weight shared by two layers is listed once
                    seen.add(id(t))
                    yield (f"{module_name}.{name}" if module_name else name), t

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        return (b for _, b in self.named_buffers(recurse=recurse))

    # ------------------------------------------------------------ state

    def state_dict(self) -> OrderedDict[str, Tensor]:
        """Every parameter and buffer by dotted name, detached (sharing memory, as PyTorch).
        In PyTorch's order: module by module, each one's parameters then its buffers; a weight or
        a layer shared by two names appears under both."""
        state = OrderedDict()
        for module_name, module in self.named_modules(remove_duplicate=False):
            buffers = [(n, b) for n, b in module._buffers.items() if n not in module._non_persistent_buffers]
            for name, t in (*module._parameters.items(), *buffers):
                if t is not None:
                    state[f"{module_name}.{name}" if module_name else name] = t.detach()
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy values (Tensors or arrays) into this module's parameters and buffers, in place.
        With `strict`, missing or unexpected keys are an error; a shape mismatch always is."""
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict and missing:
            errors.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            errors.append("unexpected keys: " + ", ".join(unexpected))
        for name, target in own.items():
            if name in state_dict:
                value = state_dict[name]
                value = value.detach().numpy() if isinstance(value, Tensor) else np.asarray(value)
                if value.shape != target.shape:
                    errors.append(f"size mismatch for {name}: the checkpoint has shape {value.shape}, "
                                  f"the model has {target.shape}")
        if errors:
            raise RuntimeError(f"load_state_dict for {type(self).__name__}: " + "; ".join(errors))
        with no_grad():
            for name, target in own.items():
                if name in state_dict:
                    value = state_dict[name]
                    target.copy_(value.detach() if isinstance(value, Tensor) else target.new_tensor(value))
        return IncompatibleKeys(missing, unexpected)

    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (or, with set_to_none=False, fill it with zeros)."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                with no_grad():
                    p.grad.zero_()

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Switch gradients on or off for every parameter (freeze a part of a model)."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """fn(m) for every submodule, children before their parents, then for this module (as
        PyTorch, for initialisation: `model.apply(init_weights)`)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """`to(dtype)`, `to(device)` or `to(device, dtype)`: every floating point parameter and buffer
        converted, in place (the same Parameter objects, so an optimizer made before still sees them)."""
        for t in list(self.parameters()) + list(self.buffers()):
            if t.dtype.kind == "f":
                t.data = t.detach().to(*args, **kwargs)
        return self

    def cpu(self) -> Module:
        return self

    def cuda(self, device: Any = None) -> Module:
        return self.to("cuda")  # raises: the CPU is the only device

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    def half(self) -> Module:
        return self.to(np.float16)

    # ------------------------------------------------------------ printing

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ("\n  " + "\n  ".join(lines) + "\n)" if lines else ")")


class Sequential(Module):
    """Modules applied in order; indexable and iterable like a list."""

    def __init__(self, *modules: Module) -> None:
        """Sequential(m0, m1, ...) names them "0", "1", ...; Sequential(OrderedDict) by its keys."""
        super().__init__()
        named = list(modules[0].items()) if len(modules) == 1 and isinstance(modules[0], Mapping) else \
            [(str(i), m) for i, m in enumerate(modules)]
        for name, m in named:
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {name} is a {type(m).__name__}, not a Module")
            setattr(self, name, m)

    def append(self, module: Module) -> Sequential:
        """Add a module at the end (named by its position, as PyTorch)."""
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i: int | slice) -> Module:
        """The i-th module, or a Sequential of a slice of them (as PyTorch)."""
        modules = list(self._modules.values())
        return Sequential(*modules[i]) if isinstance(i, slice) else modules[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class ModuleList(Module):
    """Modules held in a list, each registered (their parameters are the list's); no forward."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        self.extend(modules or [])

    def _index(self, i: int) -> str:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"ModuleList: index {i} is out of range for {n} modules")
        return str(i % n)

    def __getitem__(self, i: int | slice) -> Module | ModuleList:
        if isinstance(i, slice):
            return ModuleList(list(self._modules.values())[i])
        return self._modules[self._index(i)]

    def __setitem__(self, i: int, module: Module) -> None:
        self.add_module(self._index(i), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._modules.clear()
        self.extend(modules)


class ModuleDict(Module):
    """Modules held by name, each registered; no forward."""

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def keys(self) -> Iterable[str]:
        return self._modules.keys()

    def values(self) -> Iterable[Module]:
        return self._modules.values()

    def items(self) -> Iterable[tuple[str, Module]]:
        return self._modules.items()

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        for key, module in (modules.items() if isinstance(modules, Mapping) else modules):
            self[key] = module

    def pop(self, key: str) -> Module:
        module = self._modules[key]
        del self[key]
        return module


class ParameterList(Module):
    """Parameters held in a list, each registered (named "0", "1", ...); no forward."""

    def __init__(self, values: Iterable[Any] | None = None) -> None:
        super().__init__()
        for value in values or []:
            self.append(value)

    def __getitem__(self, i: int) -> Parameter:
        return list(self._parameters.values())[i]

    def __setitem__(self, i: int, value: Any) -> None:
        self.register_parameter(str(i % len(self)), value if isinstance(value, Parameter) else Parameter(value))

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._parameters.values())

    def append(self, value: Any) -> ParameterList:
        self.register_parameter(str(len(self)), value if isinstance(value, Parameter) else Parameter(value))
        return self

    def extend(self, values: Iterable[Any]) -> ParameterList:
        for value in values:
            self.append(value)
        return self
