"""Every reference the docs and the code's comments make resolves inside this repository.

A newcomer follows links and `docs/...` names; one that leads nowhere, or to a file that only
exists on some developer's machine, is a dead end. Three checks:

* a relative Markdown link in README.md, docs/*.md, examples/**/README.md and
  containers/**/README.md resolves (relative to its file) to a file or folder inside the
  repository; ``#anchor`` links and URLs with a scheme are not files and are skipped;
* those docs, and the comments and docstrings of *.py / *.sh / Dockerfile* / shell scripts,
  name no file outside the repository: no path that climbs out of it, no absolute path into this
  checkout or a folder beside it, and not the outside contract notes (docs/contract.md is the
  project's own);
* each docs/<name>.md named anywhere in the code, comments or docs exists.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {"__pycache__", "build", "dist", "demo-output", "example-output", "node_modules"}
CODE_SUFFIXES = {".py", ".sh"}
TEXT_SUFFIXES = {".py", ".sh", ".md", ".toml", ".txt", ".yaml", ".yml", ".json", ".cfg", ".ini"}

FENCE = re.compile(r"^ {0,3}(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
OUTSIDE_NOTES = re.compile(r"\bCON" r"TRACT\b|\.\./" r"shared\b")
"""The outside contract notes, by name or folder, in any form (a ``file://`` URI too: a reader
cannot tell an example folder of that name from them)."""
CLIMBING_PATH = re.compile(r"(?<![\w.])(?:\.\./)+[\w.-][\w./-]*")
DOCS_NAME = re.compile(r"(?<![\w-])docs/([\w.-]+\.md)\b")


def _walk(top: Path) -> Iterator[Path]:
    for path in sorted(top.iterdir()):
        if path.is_symlink():
            continue
        if path.is_dir():
            if not path.name.startswith(".") and path.name not in SKIP_DIRS \
                    and not path.name.endswith(".egg-info"):
                yield from _walk(path)
        elif path.is_file():
            yield path


FILES = list(_walk(ROOT))


def _is_shell_script(path: Path) -> bool:
    if path.suffix:
        return False
    try:
        with path.open("rb") as handle:
            first = handle.readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and (b"sh" in first or b"bash" in first)


def _doc_files() -> list[Path]:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for top in ("examples", "containers"):
        docs += [p for p in FILES if p.name == "README.md" and p.is_relative_to(ROOT / top)]
    return [p for p in docs if p.is_file()]


def _code_files() -> list[Path]:
    return [p for p in FILES if p.suffix in CODE_SUFFIXES or p.name.startswith("Dockerfile")
            or _is_shell_script(p)]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """Markdown lines outside fenced code blocks, with inline code spans blanked."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, INLINE_CODE.sub("``", line)


def _comment_lines(path: Path) -> Iterator[tuple[int, str]]:
    """The comments (and, for Python, the docstrings) of a code file, by line."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix != ".py":
        for number, line in enumerate(text.splitlines(), 1):
            hash_at = line.find("#")
            if hash_at >= 0 and not line.startswith("#!"):
                yield number, line[hash_at:]
        return
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                yield token.start[0], token.string
        tree = ast.parse(text)
    except (tokenize.TokenError, SyntaxError):
        yield from enumerate(text.splitlines(), 1)  # unparsable: every line counts
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) \
                and node.body and isinstance(node.body[0], ast.Expr) \
                and isinstance(node.body[0].value, ast.Constant) \
                and isinstance(node.body[0].value.value, str):
            start = node.body[0].lineno
            for offset, line in enumerate(node.body[0].value.value.splitlines()):
                yield start + offset, line


def _inside_repo(target: Path) -> bool:
    return target.resolve().is_relative_to(ROOT)


def _machine_paths() -> list[str]:
    """Absolute paths of this checkout and of the folders beside it: naming one ties a doc or a
    comment to one developer's machine. (Only this checkout's path when it sits right under /,
    where "beside it" would be the whole system.)"""
    found = [str(ROOT) + "/"]
    if len(ROOT.parent.parts) >= 2:
        found += [str(entry) + "/" for entry in ROOT.parent.iterdir()
                  if entry.is_dir() and entry != ROOT]
    return found


def _outside_references(path: Path, lines: Iterator[tuple[int, str]]) -> list[str]:
    machine = _machine_paths()
    problems = []
    for number, line in lines:
        where = f"{_rel(path)}:{number}"
        for match in OUTSIDE_NOTES.finditer(line):
            problems.append(f"{where}: names notes outside the repository ({match.group(0)!r}); "
                            "the project's contract doc is docs/contract.md")
        for match in CLIMBING_PATH.finditer(line):
            if not _inside_repo(path.parent / match.group(0)):
                problems.append(f"{where}: {match.group(0)!r} climbs out of the repository")
        problems += [f"{where}: names {prefix!r}, a path on one machine outside the repository"
                     for prefix in machine if prefix in line]
    return problems


def test_relative_markdown_links_resolve_inside_the_repository() -> None:
    problems = []
    for doc in _doc_files():
        for number, line in _prose_lines(doc.read_text(encoding="utf-8")):
            targets = [m.group(1) for m in INLINE_LINK.finditer(line)]
            reference = REFERENCE_LINK.match(line)
            if reference:
                targets.append(reference.group(1))
            for target in targets:
                if not target or target.startswith("#") or SCHEME.match(target):
                    continue
                file_part = unquote(target.split("#", 1)[0].split("?", 1)[0])
                base = ROOT if file_part.startswith("/") else doc.parent
                resolved = base / file_part.lstrip("/")
                where = f"{_rel(doc)}:{number}: link {target!r}"
                if not _inside_repo(resolved):
                    problems.append(f"{where} leads out of the repository")
                elif not resolved.exists():
                    problems.append(f"{where} resolves to {_rel(resolved.resolve())}, "
                                    "which does not exist")
    assert problems == []


def test_docs_and_comments_name_no_file_outside_the_repository() -> None:
    problems = []
    for doc in _doc_files():
        text = doc.read_text(encoding="utf-8")
        problems += _outside_references(doc, enumerate(text.splitlines(), 1))
    for code in _code_files():
        problems += _outside_references(code, _comment_lines(code))
    assert problems == []


def test_every_docs_file_named_anywhere_exists() -> None:
    problems = []
    for path in FILES:
        if path.suffix not in TEXT_SUFFIXES and not path.name.startswith("Dockerfile") \
                and not _is_shell_script(path):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            problems += [f"{_rel(path)}:{number}: docs/{name} does not exist"
                         for name in DOCS_NAME.findall(line)
                         if not (ROOT / "docs" / name).is_file()]
    assert problems == []


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """The patterns themselves: a check that matches nothing would pass on anything."""
    assert INLINE_LINK.findall("see [the docs](docs/contract.md#part) and ![img](a%20b.png)") == \
        ["docs/contract.md#part", "a%20b.png"]
    assert REFERENCE_LINK.match('[ref]: ../y.md "title"').group(1) == "../y.md"  # type: ignore[union-attr]
    assert list(_prose_lines("a `[x](nowhere.md)` b\n```\n[y](gone.md)\n```\n")) == \
        [(1, "a `` b")]
    assert OUTSIDE_NOTES.search("see ../" "shared/notes.md")
    assert OUTSIDE_NOTES.search("`file://../" "shared/` is made absolute")
    assert OUTSIDE_NOTES.search("per CON" "TRACT.md section 3")
    assert not OUTSIDE_NOTES.search("CON" "TRACT_VERSION = 1")
    assert CLIMBING_PATH.findall("file:///.../model.tar.gz and ../../etc/passwd") == \
        ["../../etc/passwd"]
    assert DOCS_NAME.findall("see docs/contract.md, mydocs/x.md and ../docs/wire-api.md.") == \
        ["contract.md", "wire-api.md"]
    script = tmp_path / "tool.py"
    script.write_text('"""Module doc: ../../../../../../../x."""\nx = "../../../../../../y"  # ok\n')
    assert [line for _, line in _comment_lines(script)] == \
        ["# ok", "Module doc: ../../../../../../../x."]
