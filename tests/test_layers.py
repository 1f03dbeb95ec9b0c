"""The package's layers hold: each module imports only from the layers below it, private modules
stay inside their package, and internals of `openai` and the Agents SDK are touched in
`backends/_compat.py` only."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests import helpers

PACKAGE = helpers.ROOT / "agent_runtime"
COMPAT = PACKAGE / "backends" / "_compat.py"
# Private names of openai / agents the runtime relies on (see backends/_compat.py).
PRIVATE_NAMES = {
    "_build_response_create_kwargs",
    "_debug",
    "_get_client",
    "_post",
    "_to_dump_compatible",
    "DONT_LOG_MODEL_DATA",
    "FAKE_RESPONSES_ID",
    "make_request_options",
    "openapi_dumps",
}


def contracts() -> list[dict[str, object]]:
    config = tomllib.loads((helpers.ROOT / "pyproject.toml").read_text())
    found: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return found


def test_import_contracts_are_kept() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None
    result = subprocess.run(
        [lint, "--no-cache"], cwd=helpers.ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_every_module_has_a_layer() -> None:
    (layers,) = [c["layers"] for c in contracts() if c["type"] == "layers"]
    assert isinstance(layers, list)
    named = {name.strip() for layer in layers for name in layer.split("|")}
    top = {
        f"agent_runtime.{path.stem}"
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" or (path / "__init__.py").is_file())
        and path.stem not in ("__init__", "__main__")
    }
    assert top == named


def test_private_modules_of_every_package_are_checked() -> None:
    (forbidden,) = [c for c in contracts() if c["type"] == "forbidden"]
    private = {
        ".".join(path.relative_to(helpers.ROOT).with_suffix("").parts)
        for path in PACKAGE.rglob("_*.py")
        if not path.name.startswith("__")
    }
    assert private == set(forbidden["forbidden_modules"])  # type: ignore[arg-type]


def private_uses(path: Path) -> list[str]:
    """Imports of private modules of openai / agents, and their private names, in `path`."""
    uses = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] in ("openai", "agents") and (
                any(part.startswith("_") for part in parts) or parts[:2] == ["agents", "util"]
            ):
                uses.append(f"{path.name}:{node.lineno} from {node.module}")
            uses += [
                f"{path.name}:{node.lineno} {alias.name}"
                for alias in node.names
                if parts[0] in ("openai", "agents") and alias.name in PRIVATE_NAMES
            ]
        elif isinstance(node, ast.Attribute) and node.attr in PRIVATE_NAMES:
            uses.append(f"{path.name}:{node.lineno} .{node.attr}")
        elif isinstance(node, ast.FunctionDef) and node.name in PRIVATE_NAMES:
            uses.append(f"{path.name}:{node.lineno} def {node.name}")
    return uses


def test_sdk_internals_are_used_in_compat_only() -> None:
    elsewhere = {
        str(path.relative_to(PACKAGE)): uses
        for path in PACKAGE.rglob("*.py")
        if path != COMPAT and (uses := private_uses(path))
    }
    assert elsewhere == {}
    assert len(private_uses(COMPAT)) >= 8  # the check itself finds them where they are
