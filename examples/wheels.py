"""Extra wheels for an example image, layered on an optml framework image's offline wheelhouse.

Why: image builds run with ``--network none`` (no index inside a build), and the optml images
install only what ``scripts/build-wheelhouse.sh`` downloaded for them. An example that needs one
more package (skl2onnx, pyarrow) resolves it on the host, *against the exact versions the framework
image installed* (its wheelhouse set, used as constraints and as a local find-links source), and
keeps only the wheels the image lacks. The result is cached beside the wheelhouse sets
(``<cache>/example-<name>-<hash>/``, complete when ``.complete`` exists, written atomically), so
the network is used once; later runs, and runs after the cache is filled, are offline.

The download target is the wheelhouse's: CPython 3.11, manylinux x86_64 up to glibc 2.36,
binary wheels only (nothing compiles inside an image).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON_VERSION = "3.11"
GLIBC_MINOR = 36


class WheelhouseError(RuntimeError):
    """The framework's wheelhouse or the extra download failed; the message says which."""


def _target_flags() -> list[str]:
    """pip's cross-platform download flags, as scripts/build-wheelhouse.sh spells them."""
    nodot = PYTHON_VERSION.replace(".", "")
    flags = ["--only-binary=:all:", "--python-version", PYTHON_VERSION, "--implementation", "cp",
             "--abi", f"cp{nodot}", "--abi", "abi3", "--abi", "none"]
    for minor in range(GLIBC_MINOR, 4, -1):
        flags += ["--platform", f"manylinux_2_{minor}_x86_64"]
    for legacy in ("manylinux2014", "manylinux2010", "manylinux1"):
        flags += ["--platform", f"{legacy}_x86_64"]
    return flags + ["--platform", "any"]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins_of(directory: Path) -> dict[str, str]:
    """``{canonical name: version}`` of every wheel in ``directory``."""
    pins: dict[str, str] = {}
    for wheel in sorted(directory.glob("*.whl")):
        name, version = wheel.name.split("-")[:2]
        pins[_canonical(name)] = version
    return pins


def framework_wheelhouse(framework: str) -> Path:
    """The wheel set the optml/<framework> image was built from (made, or found in the cache,
    by scripts/build-wheelhouse.sh)."""
    script = REPO / "scripts" / "build-wheelhouse.sh"
    result = subprocess.run([str(script), framework], cwd=REPO, capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        raise WheelhouseError(f"{script} {framework} failed ({result.returncode}):\n"
                              f"{result.stderr[-2000:]}")
    for line in result.stdout.splitlines():
        name, _, directory = line.partition("=")
        if name == framework and directory:
            return Path(directory)
    raise WheelhouseError(f"{script} printed no '{framework}=DIR' line:\n{result.stdout}")


def extra_wheels(framework: str, requirements: Path, name: str) -> list[Path]:
    """Wheels that ``requirements`` adds to the optml/<framework> image (cached, see module doc).

    Returns an empty list when the image already has everything.
    """
    base = framework_wheelhouse(framework)
    pins = pins_of(base)
    wanted = requirements.read_text()
    constraints = "".join(f"{pkg}=={version}\n" for pkg, version in sorted(pins.items()))
    key = hashlib.sha256("\n--\n".join([" ".join(_target_flags()), wanted, constraints])
                         .encode()).hexdigest()[:16]
    cached = base.parent / f"example-{name}-{key}"
    if not (cached / ".complete").exists():
        _download(base, wanted, constraints, pins, cached)
    return sorted(cached.glob("*.whl"))


def _download(base: Path, wanted: str, constraints: str, pins: dict[str, str],
              destination: Path) -> None:
    partial = Path(tempfile.mkdtemp(prefix=f".partial-{destination.name}.", dir=base.parent))
    try:
        (partial / "requirements.txt").write_text(wanted)
        (partial / "constraints.txt").write_text(constraints)
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-cache-dir",
                   "--dest", str(partial), *_target_flags(), "--find-links", str(base),
                   "-r", str(partial / "requirements.txt"),
                   "-c", str(partial / "constraints.txt")]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise WheelhouseError(f"pip download of {wanted.strip()!r} failed "
                                  f"({result.returncode}):\n{result.stderr[-2000:]}")
        for wheel in partial.glob("*.whl"):  # the image has these already: keep only the new
            wheel_name, version = wheel.name.split("-")[:2]
            if pins.get(_canonical(wheel_name)) == version:
                wheel.unlink()
        (partial / ".complete").touch()
        shutil.rmtree(destination, ignore_errors=True)
        partial.rename(destination)  # atomic: a set is complete or absent
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def stage_context(context: Path, sources: dict[str, Path], wheels: list[Path]) -> None:
    """Lay out a build context: ``sources`` (``{name in context: file or directory}``) and
    ``wheels/`` (hard links where the filesystem allows, copies otherwise)."""
    for target, source in sources.items():
        if source.is_dir():
            shutil.copytree(source, context / target,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, context / target)
    (context / "wheels").mkdir()
    for wheel in wheels:
        try:
            (context / "wheels" / wheel.name).hardlink_to(wheel)
        except OSError:
            shutil.copy2(wheel, context / "wheels" / wheel.name)
