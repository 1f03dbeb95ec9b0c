"""Tool functions by reference: `package.module:function` → the imported callable.

A module next to agents.yaml is imported from there without touching `sys.path`, so a `tools/`
package beside the YAML file works from any working directory; everything else comes from
`sys.path`. Failures are `ToolResolutionError`s whose text says what to fix.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from collections.abc import Callable
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from typing import Any

from agent_runtime.config.schema import REFERENCE
from agent_runtime.errors import ToolResolutionError
from agent_runtime.text import did_you_mean

__all__ = ["import_function"]
_REFERENCE_FORM = "'package.module:function'"


def import_function(reference: str, base_dir: Path) -> Callable[..., Any]:
    """Import `package.module:function`, looking first in `base_dir`, then on `sys.path`.

    When `base_dir` holds the top package (`base_dir/package/` or `base_dir/package.py`), it is
    imported from there without touching `sys.path`, so a `tools/` package next to agents.yaml
    works from any working directory. A module of that name imported earlier from elsewhere is a
    conflict, not silently reused.

    Raises:
        ToolResolutionError: the reference is malformed, cannot be imported, or is not callable.
    """
    match = REFERENCE.fullmatch(reference)
    if match is None:
        raise ToolResolutionError(f"expected {_REFERENCE_FORM}, got {reference!r}")
    module_name, attribute = match["module"], match["attr"]
    base = Path(os.path.abspath(base_dir))
    top = module_name.partition(".")[0]
    try:
        local = PathFinder.find_spec(top, [str(base)])
        if local is not None:
            _import_top_from(top, local, module_name)
        module = importlib.import_module(module_name)
    except ToolResolutionError:
        raise
    except Exception as exc:
        raise ToolResolutionError(
            f"cannot import `{module_name}` (looked in {base} and on sys.path): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    try:
        function = getattr(module, attribute)
    except AttributeError:
        names = [name for name in dir(module) if not name.startswith("_")]
        raise ToolResolutionError(
            f"module `{module_name}` has no attribute `{attribute}`"
            + did_you_mean(attribute, names)
        ) from None
    except Exception as exc:  # a module-level __getattr__ may raise anything
        raise ToolResolutionError(
            f"getting `{attribute}` from module `{module_name}` failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(function):
        raise ToolResolutionError(f"`{reference}` is not callable")
    return function  # type: ignore[no-any-return]  # callable() narrows to Callable[..., object]


def _import_top_from(top: str, spec: ModuleSpec, module_name: str) -> None:
    """Put the top-level module found next to the YAML file into `sys.modules` (once)."""
    wanted = _spec_locations(spec)
    existing = sys.modules.get(top)
    if existing is not None:
        found = _module_locations(existing)
        if wanted & found:
            return
        elsewhere = ", ".join(sorted(str(p) for p in found)) or "built in"
        raise ToolResolutionError(
            f"cannot import `{module_name}` from {', '.join(sorted(str(p) for p in wanted))}: "
            f"another module `{top}` is already imported (from {elsewhere}); rename one of them"
        )
    module = importlib.util.module_from_spec(spec)
    if spec.origin is None and spec.submodule_search_locations is not None:
        # A namespace package would re-scan sys.path for its parts; pin it to this folder.
        module.__path__ = list(spec.submodule_search_locations)
    sys.modules[top] = module
    try:
        assert spec.loader is not None  # module_from_spec sets one for namespace packages
        spec.loader.exec_module(module)
    except BaseException:
        if sys.modules.get(top) is module:
            del sys.modules[top]
        raise


def _spec_locations(spec: ModuleSpec) -> set[Path]:
    if spec.origin is not None and spec.has_location:
        return {Path(spec.origin).resolve()}
    return {Path(p).resolve() for p in spec.submodule_search_locations or ()}


def _module_locations(module: types.ModuleType) -> set[Path]:
    file = getattr(module, "__file__", None)
    if isinstance(file, str):
        return {Path(file).resolve()}
    return {Path(p).resolve() for p in getattr(module, "__path__", None) or ()}
