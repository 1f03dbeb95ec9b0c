"""Import vLLM's serving code on a machine without torch or a GPU.

vLLM's OpenAI-compatible front end (request models, harmony rendering, output parsing, the
FastAPI routers and exception handlers) is pure Python, but importing it pulls in `torch`,
`transformers` and vLLM subpackages that register torch custom ops when imported
(`vllm.config`, `vllm.distributed`, `vllm.model_executor`). None of that code runs when the
engine is replaced by a scripted fake (see server.py), so those modules are served as *stubs*:
permissive modules whose every attribute is a dynamically created class.

Stub attributes are classes rather than `unittest.mock.MagicMock` instances because vLLM
subclasses some of them and combines them in `X | None` annotations; mock instances break
multiple inheritance (metaclass conflict). A few attributes need real values and are listed in
`_OVERRIDES`.

Call `install(version)` before the first `import vllm`.
"""

from __future__ import annotations

import dataclasses
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["STUBS", "install"]

_VLLM_SUBPACKAGES = ("vllm.config", "vllm.distributed", "vllm.model_executor")

STUBS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # version: (stubbed top-level packages, stubbed vLLM subpackages)
    "0.33.0": (("torch", "transformers", "mistral_common"), _VLLM_SUBPACKAGES),
    # 0.22.1 reads the real `transformers` distribution's metadata, so it is installed there,
    # and imports two more optional packages at module level.
    "0.22.1": (
        ("torch", "mistral_common", "gguf", "model_hosting_container_standards"),
        _VLLM_SUBPACKAGES,
    ),
}
"""Which modules are stubbed for each supported vLLM version."""

_INT64 = types.SimpleNamespace(min=-(2**63), max=2**63 - 1, bits=64)
_FLOAT32 = types.SimpleNamespace(min=-3.4e38, max=3.4e38, eps=1e-7, tiny=1e-38)

_OVERRIDES: dict[str, dict[str, Any]] = {
    # pydantic fields such as `Field(le=torch.iinfo(torch.long).max)` need real bounds.
    "torch": {
        "iinfo": lambda dtype=None: _INT64,
        "finfo": lambda dtype=None: _FLOAT32,
        "__version__": "2.14.0",
    },
    # vLLM applies `vllm.config.utils.replace` to StructuredOutputsParams (a dataclass) when it
    # installs a structural tag for `tool_choice`.
    "vllm.config.utils": {"replace": lambda obj, /, **changes: dataclasses.replace(obj, **changes)},
}


class _StubMeta(type):
    """Metaclass of stub classes: every attribute, call, item and union is another stub."""

    def __getattr__(cls, item: str) -> Any:
        if item.startswith("__") and item.endswith("__"):
            raise AttributeError(item)
        stub = _stub_class(f"{cls.__name__}.{item}")
        setattr(cls, item, stub)
        return stub

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        # Used as a decorator (`@torch.inference_mode`, `@CustomOp.register("x")` results):
        # hand back the decorated function unchanged.
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        return super().__call__()

    def __getitem__(cls, item: Any) -> Any:
        return cls

    def __or__(cls, other: Any) -> Any:
        return cls

    def __ror__(cls, other: Any) -> Any:
        return cls

    def __iter__(cls) -> Iterator[Any]:
        return iter(())

    def __len__(cls) -> int:
        return 0

    def __bool__(cls) -> bool:
        return False

    def __instancecheck__(cls, obj: Any) -> bool:
        return False

    def __subclasscheck__(cls, sub: Any) -> bool:
        return False


class _StubBase(metaclass=_StubMeta):
    """Base of stub classes; instances are as permissive as the classes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __getattr__(self, item: str) -> Any:
        if item.startswith("__") and item.endswith("__"):
            raise AttributeError(item)
        return _stub_class(item)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _stub_class("call")()

    def __bool__(self) -> bool:
        return False

    def __iter__(self) -> Iterator[Any]:
        return iter(())


def _stub_class(name: str) -> Any:
    return _StubMeta(name.rsplit(".", 1)[-1], (_StubBase,), {"__module__": "stub"})


class _StubModule(types.ModuleType):
    """A package whose missing attributes are created as stub classes on first access."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__path__: list[str] = []
        self.__file__ = f"<stub {name}>"
        self.__version__ = "2.14.0"

    def __getattr__(self, item: str) -> Any:
        if item.startswith("__") and item.endswith("__"):
            raise AttributeError(item)
        stub = _stub_class(f"{self.__name__}.{item}")
        setattr(self, item, stub)
        return stub


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves `_StubModule`s for the configured packages and everything below them."""

    def __init__(self, roots: Sequence[str], prefixes: Sequence[str]) -> None:
        self._roots = frozenset(roots)
        self._prefixes = tuple(prefixes)

    def _stubbed(self, fullname: str) -> bool:
        if fullname.split(".")[0] in self._roots:
            return True
        return any(fullname == p or fullname.startswith(p + ".") for p in self._prefixes)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not self._stubbed(fullname):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _StubModule(spec.name)
        for key, value in _OVERRIDES.get(spec.name, {}).items():
            setattr(module, key, value)
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def install(version: str) -> Callable[[], None]:
    """Stub the modules vLLM `version` cannot import here; returns a function that undoes it.

    Must run before `vllm` (or anything importing it) is imported.
    """
    if version not in STUBS:
        raise SystemExit(f"Error: no shims for vLLM {version}; known: {', '.join(STUBS)}.")
    if "vllm" in sys.modules:
        raise RuntimeError("shim.install() must run before vllm is imported")
    roots, prefixes = STUBS[version]
    finder = _StubFinder(roots, prefixes)
    sys.meta_path.insert(0, finder)
    return lambda: sys.meta_path.remove(finder)
