"""The peers' generated configuration, validated by the real programs where they exist."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bench.serving.servers import nginx_config


def test_nginx_config_is_accepted_by_nginx(tmp_path: Path) -> None:
    root = tmp_path / "nginx"
    root.mkdir()
    conf = root / "nginx.conf"
    conf.write_text(nginx_config(root, tmp_path / "gunicorn.sock", 23456, as_root=True))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    done = subprocess.run([nginx, "-t", "-p", f"{root}/", "-c", str(conf), "-e",
                           str(root / "error.log")], check=False, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_nginx_config_keeps_everything_under_its_root(tmp_path: Path) -> None:
    text = nginx_config(tmp_path, tmp_path / "g.sock", 23456, as_root=False)
    assert "user root" not in text
    assert "listen 127.0.0.1:23456" in text
    assert f"server unix:{tmp_path / 'g.sock'};" in text
    for line in text.splitlines():
        if "_path " in line or line.strip().startswith(("pid ", "error_log ")):
            assert str(tmp_path) in line, line
