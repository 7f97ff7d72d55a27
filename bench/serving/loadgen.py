"""Drive a server with ``wrk`` and read back requests/s and latency percentiles.

One load generator for every server keeps the comparison honest: the same keep-alive
connections, the same POST body, the same clock. ``wrk`` reports through a Lua ``done()`` hook
that prints one JSON line (marked by :data:`RESULT_MARKER`), so nothing depends on wrk's human
output format. Each run is bounded in time (``-d``) and in count (the Lua ``response()`` hook
stops a thread after ``max_requests`` responses).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

RESULT_MARKER = "OPTML_WRK_RESULT "
_FIELDS = ("requests", "duration_us", "bytes", "connect_errors", "read_errors", "write_errors",
           "status_errors", "timeouts", "p50_us", "p90_us", "p99_us", "max_us", "mean_us")


class LoadGenError(RuntimeError):
    """wrk is missing, failed, or printed no result line."""


@dataclass(frozen=True)
class LoadResult:
    """What one wrk run measured; latencies in milliseconds."""

    concurrency: int
    requests: int
    duration_s: float
    errors: int
    """Socket errors, timeouts and responses with status >= 400, all together."""
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_s: float | None = None
    """CPU seconds the server's processes used during the run (filled in by the runner)."""
    process_cpu_s: tuple[float, ...] = ()
    """The same per server process, busiest first (filled in by the runner): how evenly the
    workers shared the work."""

    @property
    def cpu_ms_per_request(self) -> float | None:
        """Server CPU per successful request, in milliseconds; ``None`` when not measured."""
        served = self.requests - self.errors
        if self.server_cpu_s is None or served <= 0:
            return None
        return self.server_cpu_s * 1e3 / served

    @property
    def server_cores(self) -> float | None:
        """Average CPU cores the server used during the run (CPU seconds / wall seconds).

        On an oversubscribed host a server with more runnable threads gets a larger share of the
        CPU; this column shows when requests/s reflects that share rather than efficiency.
        """
        if self.server_cpu_s is None or self.duration_s <= 0:
            return None
        return self.server_cpu_s / self.duration_s

    @property
    def rps(self) -> float:
        """Successful requests per second (failed ones do not count as throughput)."""
        if self.duration_s <= 0:
            return 0.0
        return max(self.requests - self.errors, 0) / self.duration_s


def lua_string(value: bytes) -> str:
    """A Lua string literal for arbitrary bytes, in printable ASCII only.

    Quotes, backslashes and every byte outside 0x20-0x7e become ``\\ddd`` decimal escapes (valid
    in Lua 5.1 / LuaJIT, which wrk embeds), so no body can break out of the literal.
    """
    parts = ['"']
    for byte in value:
        if 0x20 <= byte <= 0x7E and byte not in (0x22, 0x5C):
            parts.append(chr(byte))
        else:
            parts.append(f"\\{byte:03d}")
    parts.append('"')
    return "".join(parts)


def wrk_script(body: bytes, content_type: str, max_requests: int) -> str:
    """The Lua script: POST ``body`` with ``content_type``, cap responses, print JSON at the end."""
    if max_requests < 1:
        raise ValueError(f"max_requests must be >= 1, got {max_requests}")
    header = lua_string(content_type.encode("ascii"))
    fields = ",".join(f'"{name}":' + ("%.1f" if name == "mean_us" else "%d") for name in _FIELDS)
    line_format = lua_string(f"{RESULT_MARKER}{{{fields}}}\n".encode("ascii"))
    return f"""
wrk.method = "POST"
wrk.body = {lua_string(body)}
wrk.headers["Content-Type"] = {header}
wrk.headers["Accept"] = {header}

local max_requests = {int(max_requests)}
local seen = 0

function response(status, headers, body)
  seen = seen + 1
  if seen >= max_requests then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format({line_format},
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def parse_result(output: str, concurrency: int) -> LoadResult:
    """Read the marked JSON line out of wrk's stdout."""
    for line in output.splitlines():
        if line.startswith(RESULT_MARKER):
            try:
                raw = json.loads(line[len(RESULT_MARKER):])
            except json.JSONDecodeError as exc:
                raise LoadGenError(f"unreadable wrk result line {line!r}: {exc}") from None
            missing = [name for name in _FIELDS if name not in raw]
            if missing:
                raise LoadGenError(f"wrk result line lacks {missing}: {line!r}")
            errors = (raw["connect_errors"] + raw["read_errors"] + raw["write_errors"]
                      + raw["status_errors"] + raw["timeouts"])
            return LoadResult(
                concurrency=concurrency, requests=int(raw["requests"]),
                duration_s=raw["duration_us"] / 1e6, errors=int(errors),
                p50_ms=raw["p50_us"] / 1e3, p90_ms=raw["p90_us"] / 1e3,
                p99_ms=raw["p99_us"] / 1e3, max_ms=raw["max_us"] / 1e3)
    raise LoadGenError(f"wrk printed no result line; its output was:\n{output[-2000:]}")


def run_wrk(port: int, path: str, body: bytes, content_type: str, concurrency: int,
            duration_s: float, workdir: Path, threads: int = 1, max_requests: int = 1_000_000,
            request_timeout_s: float = 10.0) -> LoadResult:
    """Run one bounded wrk measurement against ``http://127.0.0.1:port/path``.

    ``threads`` defaults to 1: on a 2-core machine every wrk thread takes CPU from the server
    under test, and one epoll thread easily outruns a Python server.
    """
    wrk = shutil.which("wrk")
    if wrk is None:
        raise LoadGenError("wrk is not installed: run scripts/bench-serving-setup.sh")
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    threads = max(1, min(threads, concurrency))
    script = workdir / f"wrk-c{concurrency}.lua"
    script.write_text(wrk_script(body, content_type, max_requests))
    argv = [wrk, "-t", str(threads), "-c", str(concurrency), "-d", f"{max(1, round(duration_s))}s",
            "--timeout", f"{max(1, round(request_timeout_s))}s", "-s", str(script),
            f"http://127.0.0.1:{port}{path}"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False,
                              timeout=duration_s + request_timeout_s + 30)
    except subprocess.TimeoutExpired:
        raise LoadGenError(f"wrk did not finish: {argv}") from None
    if done.returncode != 0:
        raise LoadGenError(f"wrk exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return parse_result(done.stdout, concurrency)
