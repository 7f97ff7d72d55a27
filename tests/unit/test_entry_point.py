"""toolkit.training.entry_point: which kind of program the user gave and how it is run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from toolkit.errors import UserCodeError
from toolkit.training.entry_point import EntryKind, EntryPoint, resolve_entry_point


@pytest.fixture()
def code(tmp_path: Path) -> Path:
    directory = tmp_path / "code"
    directory.mkdir()
    return directory


def _file(path: Path, text: str = "", mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


# -- kinds -----------------------------------------------------------------------------------

def test_python_script(code: Path) -> None:
    _file(code / "train.py", "print('x')\n")
    entry = resolve_entry_point("train.py", code)
    assert entry == EntryPoint("train.py", code.resolve(), EntryKind.SCRIPT)
    assert entry.path == code.resolve() / "train.py"
    assert entry.module_name == "train"
    assert entry.is_python
    assert not entry.needs_install
    assert entry.command(["--lr", "0.1"], python="/py") == [
        "/py", str(code.resolve() / "train.py"), "--lr", "0.1"]


def test_python_script_with_exec_bit_is_still_run_by_python(code: Path) -> None:
    _file(code / "train.py", "#!/bin/false\n", mode=0o755)
    entry = resolve_entry_point("train.py", code)
    assert entry.kind is EntryKind.SCRIPT
    assert entry.command([], python="/py") == ["/py", str(entry.path)]


def test_script_in_a_subdirectory(code: Path) -> None:
    _file(code / "src" / "jobs" / "train.py")
    entry = resolve_entry_point("src/jobs/train.py", code)
    assert entry.kind is EntryKind.SCRIPT
    assert entry.module_name == "src.jobs.train"
    assert entry.target() == [str(code.resolve() / "src" / "jobs" / "train.py")]


def test_default_python_is_this_interpreter(code: Path) -> None:
    _file(code / "train.py")
    assert resolve_entry_point("train.py", code).command([])[0] == sys.executable


@pytest.mark.parametrize("build_file", ["setup.py", "pyproject.toml"])
def test_package_with_a_build_file_runs_as_a_module(code: Path, build_file: str) -> None:
    _file(code / build_file)
    _file(code / "train.py")
    entry = resolve_entry_point("train.py", code)
    assert entry.kind is EntryKind.MODULE
    assert entry.needs_install
    assert entry.module_name == "train"
    assert entry.command(["--a", "1"], python="/py") == ["/py", "-m", "train", "--a", "1"]


def test_module_name_without_a_file_in_an_installable_package(code: Path) -> None:
    # "sagemaker_program": "mypackage.cli" with setup.py: the package provides the module.
    _file(code / "setup.py")
    entry = resolve_entry_point("mypackage.cli", code)
    assert entry.kind is EntryKind.MODULE
    assert entry.target() == ["-m", "mypackage.cli"]


def test_package_directory_with_main(code: Path) -> None:
    _file(code / "trainer" / "__main__.py")
    _file(code / "trainer" / "__init__.py")
    entry = resolve_entry_point("trainer", code)
    assert entry.kind is EntryKind.MODULE
    assert not entry.needs_install
    assert entry.command(["x"], python="/py") == ["/py", "-m", "trainer", "x"]


def test_directory_without_main_is_refused(code: Path) -> None:
    (code / "trainer").mkdir()
    with pytest.raises(UserCodeError, match="__main__.py"):
        resolve_entry_point("trainer", code)


def test_executable_with_exec_bit_runs_directly(code: Path) -> None:
    _file(code / "train", "#!/bin/sh\necho hi\n", mode=0o755)
    entry = resolve_entry_point("train", code)
    assert entry.kind is EntryKind.EXECUTABLE
    assert entry.interpreter == ()
    assert not entry.is_python
    assert entry.command(["--epochs", "3"], python="/py") == [
        str(code.resolve() / "train"), "--epochs", "3"]


def test_shell_script_with_exec_bit_runs_directly(code: Path) -> None:
    _file(code / "train.sh", "echo hi\n", mode=0o755)
    entry = resolve_entry_point("train.sh", code)
    assert entry.command(["a b"]) == [str(code.resolve() / "train.sh"), "a b"]


def test_shell_script_without_exec_bit_runs_with_bin_sh(code: Path) -> None:
    _file(code / "train.sh", "echo hi\n")
    entry = resolve_entry_point("train.sh", code)
    assert entry.kind is EntryKind.EXECUTABLE
    assert entry.interpreter == ("/bin/sh",)
    assert entry.command(["--x", "1 2"]) == ["/bin/sh", str(code.resolve() / "train.sh"),
                                             "--x", "1 2"]


def test_shebang_without_exec_bit_uses_the_shebang(code: Path) -> None:
    _file(code / "train.sh", "#!/bin/bash -eu\necho hi\n")
    _file(code / "run", "#!/usr/bin/env python3\nprint(1)\n")
    assert resolve_entry_point("train.sh", code).interpreter == ("/bin/bash", "-eu")
    entry = resolve_entry_point("run", code)
    assert entry.kind is EntryKind.EXECUTABLE
    assert entry.command(["--a", "1"]) == ["/usr/bin/env", "python3",
                                           str(code.resolve() / "run"), "--a", "1"]


def test_plain_file_without_exec_bit_or_shebang_is_refused(code: Path) -> None:
    _file(code / "train", "echo hi\n")
    with pytest.raises(UserCodeError, match="neither a .py file nor executable"):
        resolve_entry_point("train", code)


def test_command_is_always_a_list_of_separate_items(code: Path) -> None:
    _file(code / "train.sh", "echo\n", mode=0o755)
    args = ["--name", "it's a \"value\"; rm -rf /", "--json", '{"a": [1, 2]}']
    assert resolve_entry_point("train.sh", code).command(args)[1:] == args


def test_symlinked_code_dir_is_resolved(tmp_path: Path, code: Path) -> None:
    _file(code / "train.py")
    link = tmp_path / "link"
    link.symlink_to(code)
    entry = resolve_entry_point("train.py", link)
    assert entry.code_dir == code.resolve()


# -- refusals --------------------------------------------------------------------------------

def test_missing_program(code: Path) -> None:
    with pytest.raises(UserCodeError, match="not found"):
        resolve_entry_point("train.py", code)
    with pytest.raises(UserCodeError, match="not found"):
        resolve_entry_point("train", code)


def test_missing_py_program_even_with_a_build_file(code: Path) -> None:
    _file(code / "setup.py")
    with pytest.raises(UserCodeError, match="not found"):
        resolve_entry_point("train.py", code)


@pytest.mark.parametrize("program", ["../x.py", "../code2/x.py", "sub/../../x.py"])
def test_relative_paths_escaping_the_code_dir_are_refused(tmp_path: Path, code: Path,
                                                          program: str) -> None:
    _file(tmp_path / "x.py")
    _file(tmp_path / "code2" / "x.py")
    (code / "sub").mkdir()
    with pytest.raises(UserCodeError, match="outside the code directory"):
        resolve_entry_point(program, code)


def test_absolute_path_is_refused(tmp_path: Path, code: Path) -> None:
    outside = _file(tmp_path / "evil.py")
    with pytest.raises(UserCodeError, match="outside the code directory"):
        resolve_entry_point(str(outside), code)
    with pytest.raises(UserCodeError, match="outside the code directory"):
        resolve_entry_point("/bin/sh", code)


def test_symlink_leaving_the_code_dir_is_refused(tmp_path: Path, code: Path) -> None:
    _file(tmp_path / "evil.py")
    (code / "train.py").symlink_to(tmp_path / "evil.py")
    with pytest.raises(UserCodeError, match="outside the code directory"):
        resolve_entry_point("train.py", code)


def test_absolute_path_inside_the_code_dir_is_accepted(code: Path) -> None:
    script = _file(code / "train.py")
    entry = resolve_entry_point(str(script.resolve()), code)
    assert entry.kind is EntryKind.SCRIPT
    assert entry.path == script.resolve()


@pytest.mark.parametrize("program", ["", " train.py", "train.py ", "train.py\n"])
def test_blank_or_padded_names_are_refused(code: Path, program: str) -> None:
    _file(code / "train.py")
    with pytest.raises(UserCodeError, match="not a valid program name"):
        resolve_entry_point(program, code)


def test_user_code_error_is_an_optml_error() -> None:
    from toolkit.errors import OptmlError

    assert issubclass(UserCodeError, OptmlError)


def test_exec_bit_check_uses_the_real_permissions(code: Path) -> None:
    script = _file(code / "tool", "echo\n", mode=0o644)
    with pytest.raises(UserCodeError):
        resolve_entry_point("tool", code)
    os.chmod(script, 0o755)
    assert resolve_entry_point("tool", code).kind is EntryKind.EXECUTABLE
