"""Tool functions by reference, `package.module:function`, from beside agents.yaml or from
sys.path (`agent_runtime.config.imports`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent_runtime.config import import_function
from agent_runtime.errors import ToolResolutionError
from tests.config.helpers import PROJECT, write


def test_a_namespace_package_next_to_the_yaml_file(tmp_path: Path) -> None:
    write(tmp_path, {"nstools/tool.py": "def run() -> int:\n    return 7\n"})
    assert import_function("nstools.tool:run", tmp_path)() == 7
    assert sys.modules["nstools"].__path__ == [str(tmp_path / "nstools")]


def test_a_module_file_next_to_the_yaml_file(tmp_path: Path) -> None:
    write(tmp_path, {"solo.py": "def run() -> str:\n    return 'solo'\n"})
    assert import_function("solo:run", tmp_path)() == "solo"


def test_modules_on_sys_path_are_imported_as_usual(tmp_path: Path) -> None:
    import json

    assert import_function("json:dumps", tmp_path) is json.dumps


def test_a_package_of_the_same_name_imported_from_elsewhere_is_a_conflict(tmp_path: Path) -> None:
    write(tmp_path / "one", {"mytools/__init__.py": "", "mytools/a.py": "def f() -> None: ..."})
    write(tmp_path / "two", {"mytools/__init__.py": "", "mytools/a.py": "def f() -> None: ..."})
    import_function("mytools.a:f", tmp_path / "one")
    with pytest.raises(ToolResolutionError) as caught:
        import_function("mytools.a:f", tmp_path / "two")
    assert str(caught.value) == (
        f"cannot import `mytools.a` from {tmp_path}/two/mytools/__init__.py: another module "
        f"`mytools` is already imported (from {tmp_path}/one/mytools/__init__.py); "
        "rename one of them"
    )


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        pytest.param("nope", "expected 'package.module:function', got 'nope'", id="no-colon"),
        pytest.param(
            "mytools.weather.get_weather",
            "expected 'package.module:function', got 'mytools.weather.get_weather'",
            id="dots-only",
        ),
        pytest.param(
            "mytools/weather:get_weather",
            "expected 'package.module:function', got 'mytools/weather:get_weather'",
            id="slash",
        ),
        pytest.param(
            "mytools.weathr:get_weather",
            "cannot import `mytools.weathr` (looked in {base} and on sys.path): "
            "ModuleNotFoundError: No module named 'mytools.weathr'",
            id="missing-module",
        ),
        pytest.param(
            "notapackage_xyz.mod:f",
            "cannot import `notapackage_xyz.mod` (looked in {base} and on sys.path): "
            "ModuleNotFoundError: No module named 'notapackage_xyz'",
            id="missing-package",
        ),
        pytest.param(
            "mytools.weather:get_wether",
            "module `mytools.weather` has no attribute `get_wether`. Did you mean `get_weather`?",
            id="missing-attribute",
        ),
        pytest.param(
            "mytools.weather:nothing_like_it",
            "module `mytools.weather` has no attribute `nothing_like_it`",
            id="missing-attribute-no-suggestion",
        ),
        pytest.param(
            "mytools.weather:UNITS", "`mytools.weather:UNITS` is not callable", id="not-callable"
        ),
    ],
)
def test_import_function_errors(reference: str, expected: str) -> None:
    with pytest.raises(ToolResolutionError) as caught:
        import_function(reference, PROJECT)
    assert str(caught.value) == expected.format(base=PROJECT)


def test_an_exception_while_importing_the_module_shows_its_type_and_message(tmp_path: Path) -> None:
    write(tmp_path, {"boom/__init__.py": "", "boom/bad.py": "RATE = 1 / 0\n"})
    with pytest.raises(ToolResolutionError) as caught:
        import_function("boom.bad:f", tmp_path)
    assert str(caught.value) == (
        f"cannot import `boom.bad` (looked in {tmp_path} and on sys.path): "
        "ZeroDivisionError: division by zero"
    )
    assert "boom.bad" not in sys.modules


def test_a_module_getattr_that_fails(tmp_path: Path) -> None:
    write(
        tmp_path, {"solo.py": "def __getattr__(name: str) -> object:\n    raise KeyError(name)\n"}
    )
    with pytest.raises(ToolResolutionError) as caught:
        import_function("solo:tool", tmp_path)
    assert str(caught.value) == "getting `tool` from module `solo` failed: KeyError: 'tool'"


def test_a_failing_top_package_is_not_left_half_imported(tmp_path: Path) -> None:
    write(tmp_path, {"boom/__init__.py": "raise RuntimeError('no config for boom')\n"})
    with pytest.raises(ToolResolutionError) as caught:
        import_function("boom:f", tmp_path)
    assert str(caught.value) == (
        f"cannot import `boom` (looked in {tmp_path} and on sys.path): "
        "RuntimeError: no config for boom"
    )
    assert "boom" not in sys.modules


def test_a_namespace_package_is_imported_once(tmp_path: Path) -> None:
    write(tmp_path, {"nstools/tool.py": "def run() -> int:\n    return 7\n"})
    first = import_function("nstools.tool:run", tmp_path)
    assert import_function("nstools.tool:run", tmp_path) is first


def test_a_namespace_package_of_the_same_name_from_elsewhere_is_a_conflict(tmp_path: Path) -> None:
    for folder in ("one", "two"):
        write(tmp_path / folder, {"nstools/tool.py": "def run() -> int:\n    return 7\n"})
    import_function("nstools.tool:run", tmp_path / "one")
    with pytest.raises(ToolResolutionError) as caught:
        import_function("nstools.tool:run", tmp_path / "two")
    assert str(caught.value) == (
        f"cannot import `nstools.tool` from {tmp_path}/two/nstools: another module `nstools` is "
        f"already imported (from {tmp_path}/one/nstools); rename one of them"
    )


def test_a_module_named_like_a_built_in_one_is_a_conflict(tmp_path: Path) -> None:
    write(tmp_path, {"sys.py": "def run() -> int:\n    return 7\n"})
    with pytest.raises(ToolResolutionError) as caught:
        import_function("sys:run", tmp_path)
    assert str(caught.value) == (
        f"cannot import `sys` from {tmp_path}/sys.py: another module `sys` is already imported "
        "(from built in); rename one of them"
    )
    assert sys.modules["sys"] is sys
