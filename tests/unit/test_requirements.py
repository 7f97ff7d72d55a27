"""Unit tests for toolkit.training.requirements: pip output parsing, streaming, errors.

Streaming is tested with a real child process: ``python -m pip`` resolves to a stand-in ``pip``
package placed first on ``PYTHONPATH``, which prints scripted output and exits with a chosen code.
"""

from __future__ import annotations

import io
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.errors import UserCodeError
from toolkit.training.requirements import (
    TAIL_BYTES,
    PipFailure,
    RequirementInstallError,
    find_requirements_file,
    install_package,
    install_requirements,
    parse_pip_failure,
)

# -- real pip outputs (captured from pip 26 and pip 23) -------------------------------------------

NO_MATCH = """\
Looking in links: /tmp/wh
ERROR: Could not find a version that satisfies the requirement optml-no-such-package==9.9 (from versions: none)
ERROR: No matching distribution found for optml-no-such-package==9.9
"""
INVALID = """\
ERROR: Invalid requirement: 'foo bar baz': Expected semicolon (after name with no version specifier) or end
    foo bar baz
        ^ (from line 1 of r2.txt)
"""
NESTED_FILE_MISSING = """\
ERROR: Could not open requirements file: [Errno 2] No such file or directory: '/tmp/code/nothere.txt'
"""
BUILD_DEPS_FAILED = """\
Processing ./badpkg
  Installing build dependencies: started
  Installing build dependencies: finished with status 'error'
  error: subprocess-exited-with-error
  
  × installing build dependencies did not run successfully.
  │ exit code: 1
  ╰─> [3 lines of output]
      Looking in links: /tmp/wh, /tmp/wh
      ERROR: Could not find a version that satisfies the requirement setuptools>=40.8.0 (from versions: none)
      ERROR: No matching distribution found for setuptools>=40.8.0
      [end of output]
  
  note: This error originates from a subprocess, and is likely not a problem with pip.
ERROR: Failed to build 'file:///tmp/badpkg' when installing build dependencies
"""
OLD_PIP_WHEEL_FAILED = """\
Building wheels for collected packages: badpkg
  Building wheel for badpkg (setup.py) ... error
  error: subprocess-exited-with-error
  
  × python setup.py bdist_wheel did not run successfully.
  │ exit code: 1
  ╰─> [2 lines of output]
      ERROR: No matching distribution found for wrong-thing
      boom
      [end of output]
  
  note: This error originates from a subprocess, and is likely not a problem with pip.
  ERROR: Failed building wheel for badpkg
  Running setup.py clean for badpkg
Failed to build badpkg
ERROR: Could not build wheels for badpkg, which is required to install pyproject.toml-based projects
"""
INSTALLABLE_WHEELS = """\
Failed to build otherpkg
ERROR: Failed to build installable wheels for some pyproject.toml based projects (otherpkg)
"""
INSTALLABLE_WHEELS_CONTEXT = """\
ERROR: Failed to build installable wheels for some pyproject.toml based projects
╰─> thirdpkg
"""
CONFLICT = """\
ERROR: Cannot install alpha==1.0 and beta==2.0 because these package versions have conflicting dependencies.
"""


@pytest.mark.parametrize("output,requirement,reason", [
    (NO_MATCH, "optml-no-such-package==9.9", "no matching distribution found"),
    (INVALID, "foo bar baz", "invalid requirement"),
    (NESTED_FILE_MISSING, "/tmp/code/nothere.txt", "requirements file cannot be opened"),
    (BUILD_DEPS_FAILED, "file:///tmp/badpkg", "build failed when installing build dependencies"),
    (OLD_PIP_WHEEL_FAILED, "badpkg", "build failed"),
    (INSTALLABLE_WHEELS, "otherpkg", "build failed"),
    (INSTALLABLE_WHEELS_CONTEXT, "thirdpkg", "build failed"),
    (CONFLICT, "alpha==1.0 and beta==2.0", "conflicting dependencies"),
    ("ERROR: Invalid requirement: \"it's\": Expected end\n", "it's", "invalid requirement"),
    ("ERROR: Invalid requirement: foo@@bar\nsome detail\n", "foo@@bar", "invalid requirement"),
    ("ERROR: Could not find a final version that satisfies the requirement torch>=99 "
     "(from versions: 1.0)\n", "torch>=99", "no version satisfies it"),
])
def test_parses_real_pip_messages(output: str, requirement: str, reason: str) -> None:
    assert parse_pip_failure(output) == PipFailure(requirement, reason)


def test_subprocess_output_only_is_used_as_a_fallback() -> None:
    quoted_only = BUILD_DEPS_FAILED.rsplit("ERROR: Failed to build", 1)[0]
    assert parse_pip_failure(quoted_only) == PipFailure("setuptools>=40.8.0",
                                                        "no matching distribution found")


@pytest.mark.parametrize("output", ["", "\n\n", "ERROR: Could not install packages due to an "
                                    "OSError: [Errno 28] No space left on device\n",
                                    "Killed\n"])
def test_unparseable_output_gives_none(output: str) -> None:
    assert parse_pip_failure(output) is None


# -- property tests ------------------------------------------------------------------------------

_name = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,30}[A-Za-z0-9])?", fullmatch=True)
_spec = st.sampled_from(["", "==", ">=", "<=", "~=", "!=", "<", ">"]).flatmap(
    lambda op: st.just("") if not op else st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,2}",
                                                         fullmatch=True).map(lambda v: op + v))
_extras = st.sampled_from(["", "[cpu]", "[s3,dev]"])
_requirement = st.builds(lambda n, e, s: n + e + s, _name, _extras, _spec)
_noise_line = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=60,
).filter(lambda line: parse_pip_failure(line) is None) | st.sampled_from([
    "Collecting numpy", "  Downloading numpy-2.0.0.whl (18 MB)", "Looking in links: /wheels",
    "Processing ./pkg", "Successfully installed a-1.0"])
_TEMPLATES = [
    "ERROR: No matching distribution found for {r}",
    "ERROR: Could not find a version that satisfies the requirement {r} (from versions: none)",
    "ERROR: Could not find a version that satisfies the requirement {r} (from versions: 1.0, 2.0)",
    "ERROR: Invalid requirement: '{r}': Expected end or semicolon",
    "ERROR: Failed building wheel for {r}",
    "Failed to build {r}",
    "ERROR: Failed to build '{r}' when getting requirements to build wheel",
    "ERROR: Could not build wheels for {r}, which is required to install pyproject.toml-based "
    "projects",
]


@settings(max_examples=150, deadline=None)
@given(requirement=_requirement, template=st.sampled_from(_TEMPLATES),
       before=st.lists(_noise_line, max_size=5), after=st.lists(_noise_line, max_size=5))
def test_property_embedded_requirement_is_extracted(requirement: str, template: str,
                                                    before: list[str], after: list[str]) -> None:
    if "{r}," in template or "building wheel" in template or template.startswith("Failed"):
        requirement = requirement.split("[")[0].split("=")[0].split("<")[0].split(">")[0]
        requirement = requirement.split("~")[0].split("!")[0]
    output = "\n".join([*before, template.format(r=requirement), *after]) + "\n"
    found = parse_pip_failure(output)
    assert found is not None
    assert found.requirement == requirement


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000))
def test_property_random_text_never_crashes(text: str) -> None:
    found = parse_pip_failure(text)
    assert found is None or (found.requirement and found.reason)
    error = RequirementInstallError(found.requirement if found else None, text, 1)
    assert "pip exit code 1" in str(error)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=500))
def test_property_random_bytes_decoded_never_crash(data: bytes) -> None:
    parse_pip_failure(data.decode("utf-8", errors="replace"))


# -- RequirementInstallError and find_requirements_file ------------------------------------

def test_error_names_the_requirement() -> None:
    error = RequirementInstallError("optml-no-such-package==9.9", NO_MATCH, 1,
                                    reason="no matching distribution found",
                                    requirements_file=Path("/opt/ml/code/requirements.txt"))
    assert isinstance(error, UserCodeError)
    assert str(error) == ("pip could not install requirement 'optml-no-such-package==9.9' from "
                          "/opt/ml/code/requirements.txt: no matching distribution found "
                          "(pip exit code 1)")
    assert (error.requirement, error.output_tail, error.returncode) == (
        "optml-no-such-package==9.9", NO_MATCH, 1)


def test_error_without_requirement_shows_last_output_lines() -> None:
    tail = "\n".join(f"line {i}" for i in range(20)) + "\n\n"
    message = str(RequirementInstallError(None, tail, 2))
    assert message.startswith("pip install failed; last output:\nline 15\n")
    assert message.endswith("line 19 (pip exit code 2)")


def test_find_requirements_file(tmp_path: Path) -> None:
    assert find_requirements_file(tmp_path) is None
    (tmp_path / "requirements.txt").write_text("numpy\n")
    assert find_requirements_file(tmp_path) == tmp_path / "requirements.txt"


def test_find_requirements_file_refuses_non_files(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").mkdir()
    with pytest.raises(UserCodeError, match="not a readable regular file"):
        find_requirements_file(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "requirements.txt").symlink_to(other / "missing.txt")
    with pytest.raises(UserCodeError, match="requirements.txt"):
        find_requirements_file(other)


# -- install_requirements with a scripted stand-in for pip --------------------------------------

def _fake_pip(tmp_path: Path, body: str) -> dict[str, str]:
    """A ``pip`` package whose ``__main__`` runs ``body``; returns the env that selects it."""
    package = tmp_path / "shim" / "pip"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(textwrap.dedent(body))
    return {"PYTHONPATH": str(tmp_path / "shim"), "PYTHONDONTWRITEBYTECODE": "1"}


def test_streams_output_line_exactly_and_passes_argv_env_and_cwd(tmp_path: Path) -> None:
    env = _fake_pip(tmp_path, """
        import os, sys
        out = sys.stdout.buffer
        out.write(b"argv=" + repr(sys.argv[1:]).encode() + b"\\n")
        out.write(b"cwd=" + os.getcwd().encode() + b"\\n")
        out.write(b"marker=" + os.environ.get("PIP_FIND_LINKS", "").encode() + b"\\n")
        out.write(b"x" * 200000 + b"\\n")   # one line much longer than any read chunk
        out.flush()
        sys.stderr.buffer.write(b"to stderr\\n")
        sys.stderr.flush()
        out.write(b"no newline at end")
    """)
    code = tmp_path / "code"
    code.mkdir()
    requirements = code / "requirements.txt"
    requirements.write_text("numpy\n")
    log = io.BytesIO()
    install_requirements(requirements, python=sys.executable,
                         environ={**env, "PIP_FIND_LINKS": "/wheels"}, log=log)
    lines = log.getvalue().split(b"\n")
    assert lines[0] == repr(["install", "-r", str(requirements), "--disable-pip-version-check",
                             "--no-input"]).encode().join([b"argv=", b""])
    assert lines[1] == f"cwd={code}".encode()
    assert lines[2] == b"marker=/wheels"
    assert lines[3] == b"x" * 200000
    assert lines[4:] == [b"to stderr", b"no newline at end"]


def test_failure_names_requirement_and_keeps_a_bounded_tail(tmp_path: Path) -> None:
    env = _fake_pip(tmp_path, """
        import sys
        for i in range(5000):
            print(f"Collecting thing-{i} " + "." * 40)
        print("ERROR: No matching distribution found for optml-no-such-package==9.9")
        sys.exit(1)
    """)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("optml-no-such-package==9.9\n")
    log = io.BytesIO()
    with pytest.raises(RequirementInstallError) as info:
        install_requirements(requirements, python=sys.executable, environ=env, log=log)
    error = info.value
    assert error.requirement == "optml-no-such-package==9.9"
    assert error.returncode == 1
    assert "optml-no-such-package==9.9" in str(error)
    assert str(requirements) in str(error)
    assert len(error.output_tail.encode()) <= TAIL_BYTES
    assert error.output_tail.startswith("Collecting thing-")  # whole lines only
    assert log.getvalue().count(b"\n") == 5001


def test_failure_without_parseable_output(tmp_path: Path) -> None:
    env = _fake_pip(tmp_path, """
        import sys
        print("something odd happened")
        sys.exit(3)
    """)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("x\n")
    with pytest.raises(RequirementInstallError) as info:
        install_requirements(requirements, python=sys.executable, environ=env, log=io.BytesIO())
    assert info.value.requirement is None
    assert info.value.returncode == 3
    assert "something odd happened" in str(info.value)


def test_missing_python_is_a_typed_error(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("x\n")
    with pytest.raises(RequirementInstallError) as info:
        install_requirements(requirements, python=str(tmp_path / "no-python"), environ={},
                             log=io.BytesIO())
    assert info.value.returncode == 127
    assert "no-python" in str(info.value)


def test_install_package_passes_the_directory_and_names_it_on_failure(tmp_path: Path) -> None:
    env = _fake_pip(tmp_path, """
        import os, sys
        print("args", sys.argv[1:], "cwd", os.getcwd())
        sys.exit(1)
    """)
    package = tmp_path / "code"
    package.mkdir()
    log = io.BytesIO()
    with pytest.raises(RequirementInstallError) as info:
        install_package(package, python=sys.executable, environ=env, log=log)
    assert info.value.requirement == str(package)
    assert f"args ['install', '{package}', '--disable-pip-version-check', '--no-input'] " \
           f"cwd {package}" in log.getvalue().decode()
