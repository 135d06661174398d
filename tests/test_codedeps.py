"""idia.codedeps: the package modules a script runs, read from import statements."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from idia.codedeps import imported_modules, script_modules

ROOT = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A small flat `idia` package: a imports b, b imports c (relatively) and a back (a cycle),
    d is imported by nobody, e only under TYPE_CHECKING, f only inside a function."""
    pkg = tmp_path / "src" / "idia"
    write(pkg / "__init__.py", '"""docs"""\n__version__ = "0"\n')
    write(pkg / "a.py", "import numpy as np\nfrom idia.b import thing\n")
    write(pkg / "b.py", "from . import c\nimport idia.a\nthing = 1\n")
    write(pkg / "c.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import idia.e\n")
    write(pkg / "d.py", "")
    write(pkg / "e.py", "")
    write(pkg / "f.py", "def g():\n    from idia import d\n    return d\n")
    return pkg


def test_direct_imports_of_a_script_in_every_spelling(package: Path, tmp_path: Path):
    script = write(
        tmp_path / "scripts" / "s.py",
        "import idia\nimport idia.a as a\nfrom idia import b, __version__\nfrom idia.c import x\n"
        "import idiadata\nfrom idia_extra import y\nimport os\n",
    )
    # `import idia` and `from idia import __version__` load no module; idiadata is another package
    assert imported_modules(script, package) == ["a", "b", "c"]


def test_transitive_closure_follows_relative_imports_and_survives_cycles(
    package: Path, tmp_path: Path
):
    script = write(tmp_path / "scripts" / "s.py", "from idia.a import thing\n")
    assert imported_modules(script, package) == ["a"]
    assert script_modules(script, package) == ["a", "b", "c"]  # not d, not e (TYPE_CHECKING only)


def test_imports_inside_functions_count(package: Path, tmp_path: Path):
    script = write(tmp_path / "scripts" / "s.py", "import idia.f\n")
    assert script_modules(script, package) == ["d", "f"]


def test_imports_of_the_package_init_are_followed(package: Path, tmp_path: Path):
    write(package / "__init__.py", "from idia import d\n")
    script = write(tmp_path / "scripts" / "s.py", "import idia.e\n")
    assert script_modules(script, package) == ["d", "e"]


def test_a_script_that_imports_nothing_of_the_package(package: Path, tmp_path: Path):
    script = write(tmp_path / "scripts" / "s.py", "import json\nprint(json.dumps(1))\n")
    assert script_modules(script, package) == []


def test_an_edited_module_is_read_again(package: Path, tmp_path: Path):
    script = write(tmp_path / "scripts" / "s.py", "import idia.d\n")
    assert script_modules(script, package) == ["d"]
    before = (package / "d.py").stat().st_mtime_ns
    write(package / "d.py", "import idia.e\n")
    os.utime(package / "d.py", ns=(before + 10**9, before + 10**9))  # coarse clocks
    assert script_modules(script, package) == ["d", "e"]


def test_an_import_of_a_missing_module_names_the_file(package: Path, tmp_path: Path):
    script = write(tmp_path / "scripts" / "s.py", "from idia.gone import x\n")
    with pytest.raises(ValueError, match=r"s\.py imports idia\.gone.*no module gone\.py"):
        script_modules(script, package)


def test_a_missing_script_is_an_error_that_names_it(package: Path, tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="nope.py"):
        script_modules(tmp_path / "nope.py", package)


def test_the_real_training_script_runs_the_trainer_and_its_helpers():
    modules = script_modules(ROOT / "workflow/scripts/train.py", ROOT / "src/idia")
    assert {"trainer", "backends", "smk"} <= set(modules)
    assert "world" not in modules and "search" not in modules
    assert modules == sorted(modules)
