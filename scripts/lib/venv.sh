# Shared by scripts/*: create the project's virtual environments once and keep them in step with
# pyproject.toml (each re-installs only when pyproject.toml changed since its last install).
#   ensure_venv       .venv: optml with every extra, the test tools and PyTorch (scripts/test)
#   ensure_demo_venv  what the main demo needs, no more: optml[local] (numpy is a core
#                     dependency). Uses .venv when that is already current (it holds all of it),
#                     else its own lean .venv-demo; sets DEMO_VENV to the one chosen.
VENV="${OPTML_VENV:-$PWD/.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"

_venv_stamp_current() {  # venv-dir wanted-stamp
  [ -x "$1/bin/python" ] && [ -f "$1/.optml-installed" ] && [ "$(cat "$1/.optml-installed")" = "$2" ]
}

_full_stamp() {
  echo "$(sha256sum pyproject.toml | cut -d' ' -f1)-torch$TORCH_VERSION"
}

ensure_venv() {
  local want
  want="$(_full_stamp)"
  if _venv_stamp_current "$VENV" "$want"; then return 0; fi
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
  "$VENV/bin/python" -m pip install --quiet "torch==$TORCH_VERSION"
  "$VENV/bin/python" -m pip install --quiet -e ".[dev]"
  echo "$want" > "$VENV/.optml-installed"
}

ensure_demo_venv() {
  if [ -z "${OPTML_DEMO_VENV:-}" ] && _venv_stamp_current "$VENV" "$(_full_stamp)"; then
    DEMO_VENV="$VENV"
    return 0
  fi
  DEMO_VENV="${OPTML_DEMO_VENV:-$PWD/.venv-demo}"
  local want
  want="$(sha256sum pyproject.toml | cut -d' ' -f1)-local"
  if _venv_stamp_current "$DEMO_VENV" "$want"; then return 0; fi
  if [ ! -x "$DEMO_VENV/bin/python" ]; then
    "$PYTHON" -m venv "$DEMO_VENV"
  fi
  # no pip upgrade: the venv's own pip installs an editable pyproject project (pip >= 21.3)
  "$DEMO_VENV/bin/python" -m pip install --quiet -e ".[local]"
  echo "$want" > "$DEMO_VENV/.optml-installed"
}
