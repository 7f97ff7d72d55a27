"""Real pip installs into a throwaway virtual environment from a local wheelhouse, offline.

The venv is created ``--without-pip`` (fast, nothing downloaded); a ``.pth`` file exposes only
the ``pip`` package of the interpreter running the tests, so installs land in the throwaway venv
and the project's own ``.venv`` is never touched.
"""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.wheelhouse import build_wheel
from toolkit.training.requirements import RequirementInstallError, install_requirements


@pytest.fixture
def venv_python(tmp_path: Path) -> str:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip_spec = importlib.util.find_spec("pip")
    assert pip_spec is not None and pip_spec.origin is not None
    pip_only = tmp_path / "pip-only"
    pip_only.mkdir()
    (pip_only / "pip").symlink_to(Path(pip_spec.origin).parent)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_packages = venv / "lib" / version / "site-packages"
    (site_packages / "_optml_test_pip.pth").write_text(f"{pip_only}\n")
    return str(venv / "bin" / "python")


@pytest.fixture
def offline_environ(tmp_path: Path) -> dict[str, str]:
    """The test's environment minus any pip/Python settings, plus an offline wheelhouse."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    env.update({
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(tmp_path / "wheelhouse"),
        "PIP_CACHE_DIR": str(tmp_path / "pip-cache"),
        "PIP_CONFIG_FILE": os.devnull,
    })
    return env


def _run(python: str, code: str) -> str:
    return subprocess.run([python, "-c", code], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_installs_from_a_local_wheelhouse_offline(tmp_path: Path, venv_python: str,
                                                  offline_environ: dict[str, str]) -> None:
    build_wheel(tmp_path / "wheelhouse", "optml-test-greeting", "1.2.0",
                {"optml_test_greeting.py": "GREETING = 'hello from the wheelhouse'\n"})
    code = tmp_path / "code"
    code.mkdir()
    requirements = code / "requirements.txt"
    requirements.write_text("# comment\noptml-test-greeting==1.2.0\n")
    log = io.BytesIO()
    install_requirements(requirements, python=venv_python, environ=offline_environ, log=log)
    assert b"Successfully installed optml-test-greeting-1.2.0" in log.getvalue()
    assert _run(venv_python, "import optml_test_greeting as g; print(g.GREETING)") == \
        "hello from the wheelhouse"
    assert importlib.util.find_spec("optml_test_greeting") is None  # test env untouched


def test_relative_paths_resolve_against_the_code_directory(
        tmp_path: Path, venv_python: str, offline_environ: dict[str, str]) -> None:
    code = tmp_path / "code"
    wheel = build_wheel(code / "vendor", "optml-test-vendored", "0.1",
                        {"optml_test_vendored.py": "VALUE = 42\n"})
    requirements = code / "requirements.txt"
    requirements.write_text(f"./vendor/{wheel.name}\n")
    install_requirements(requirements, python=venv_python, environ=offline_environ,
                         log=io.BytesIO())
    assert _run(venv_python, "import optml_test_vendored as v; print(v.VALUE)") == "42"


def test_missing_requirement_is_named(tmp_path: Path, venv_python: str,
                                      offline_environ: dict[str, str]) -> None:
    build_wheel(tmp_path / "wheelhouse", "optml-test-greeting", "1.2.0",
                {"optml_test_greeting.py": "GREETING = 'hi'\n"})
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("optml-test-greeting==1.2.0\noptml-no-such-package==9.9\n")
    log = io.BytesIO()
    with pytest.raises(RequirementInstallError) as info:
        install_requirements(requirements, python=venv_python, environ=offline_environ, log=log)
    error = info.value
    assert error.requirement == "optml-no-such-package==9.9"
    assert error.returncode != 0
    assert "'optml-no-such-package==9.9'" in str(error)
    assert "No matching distribution found" in error.output_tail
    assert log.getvalue().decode().endswith(error.output_tail)


def test_missing_requirements_file_is_named(tmp_path: Path, venv_python: str,
                                            offline_environ: dict[str, str]) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("-r extra-requirements.txt\n")
    with pytest.raises(RequirementInstallError) as info:
        install_requirements(requirements, python=venv_python, environ=offline_environ,
                             log=io.BytesIO())
    assert info.value.requirement == str(tmp_path / "extra-requirements.txt")
    assert "extra-requirements.txt" in str(info.value)
