"""Tool functions and output types by reference: `package.module:name` → the imported object.

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
from agent_runtime.text import did_you_mean, kind_of

__all__ = ["import_function", "import_type"]
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
    function = _import_object(reference, base_dir, _REFERENCE_FORM)
    if not callable(function):
        raise ToolResolutionError(f"`{reference}` is not callable")
    return function


def import_type(reference: str, base_dir: Path) -> type[Any]:
    """Import `package.module:Type` (an agent's output type), looked up as `import_function`
    looks up tools; it must be a class pydantic can validate (a pydantic model, a dataclass, a
    TypedDict...).

    Raises:
        ToolResolutionError: the reference is malformed, cannot be imported, is not a class, or
            is a class pydantic cannot validate.
    """
    found = _import_object(reference, base_dir, "'package.module:Type'")
    if not isinstance(found, type):
        raise ToolResolutionError(
            f"`{reference}` is {kind_of(found)}, not a type; name a pydantic model, a dataclass "
            "or a TypedDict"
        )
    from pydantic import PydanticSchemaGenerationError, TypeAdapter

    try:
        TypeAdapter(found)
    except PydanticSchemaGenerationError as exc:
        reason = str(exc).split(". ")[0].rstrip(".")
        raise ToolResolutionError(
            f"`{reference}` is a type pydantic cannot validate ({reason}); name a pydantic "
            "model, a dataclass or a TypedDict"
        ) from exc
    return found


def _import_object(reference: str, base_dir: Path, form: str) -> object:
    """The object `package.module:name` names (see `import_function`)."""
    match = REFERENCE.fullmatch(reference)
    if match is None:
        raise ToolResolutionError(f"expected {form}, got {reference!r}")
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
        return getattr(module, attribute)
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
