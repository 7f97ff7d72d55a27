# Shared by scripts/*: create the project's virtual environment once and keep it in step with
# pyproject.toml (re-installs only when pyproject.toml changed since the last install).
VENV="${OPTML_VENV:-$PWD/.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  local stamp="$VENV/.optml-installed"
  local want
  want="$(sha256sum pyproject.toml | cut -d' ' -f1)-torch$TORCH_VERSION"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
    "$VENV/bin/python" -m pip install --quiet "torch==$TORCH_VERSION"
    "$VENV/bin/python" -m pip install --quiet -e ".[dev]"
    echo "$want" > "$stamp"
  fi
}
