"""wrk's Lua script and the parsing of its result line."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.serving.loadgen import (
    RESULT_MARKER,
    LoadGenError,
    LoadResult,
    lua_string,
    parse_result,
    wrk_script,
)


def _lua_decode(literal: str) -> bytes:
    """Inverse of lua_string for the escapes it emits (\\ddd only)."""
    assert literal[0] == literal[-1] == '"'
    out = bytearray()
    for match in re.finditer(r"\\(\d{3})|(.)", literal[1:-1], re.DOTALL):
        out.append(int(match.group(1)) if match.group(1) else ord(match.group(2)))
    return bytes(out)


@given(st.binary(max_size=300))
def test_lua_string_round_trips_any_bytes_in_printable_ascii(value: bytes) -> None:
    literal = lua_string(value)
    assert all(0x20 <= ord(ch) <= 0x7E for ch in literal)
    assert '"' not in literal[1:-1]
    assert _lua_decode(literal) == value


def test_lua_string_escapes_quote_and_backslash() -> None:
    assert lua_string(b'a"b\\c\n') == '"a\\034b\\092c\\010"'


def test_wrk_script_embeds_body_content_type_and_cap() -> None:
    script = wrk_script(b'{"x": 1}', "application/json", 123)
    assert 'wrk.method = "POST"' in script
    assert lua_string(b'{"x": 1}') in script
    assert "local max_requests = 123" in script
    assert "function done(summary, latency, requests)" in script


def test_wrk_script_rejects_a_zero_cap() -> None:
    with pytest.raises(ValueError, match="max_requests"):
        wrk_script(b"{}", "application/json", 0)


def _line(**overrides: float) -> str:
    raw = {"requests": 1000, "duration_us": 2_000_000, "bytes": 5, "connect_errors": 0,
           "read_errors": 0, "write_errors": 0, "status_errors": 10, "timeouts": 0,
           "p50_us": 1500, "p90_us": 2500, "p99_us": 9000, "max_us": 12000, "mean_us": 1600.5}
    raw.update(overrides)
    return RESULT_MARKER + json.dumps(raw)


def test_parse_result_reads_the_marked_line_among_wrk_output() -> None:
    output = "Running 2s test @ http://127.0.0.1:1/\n" + _line() + "\nRequests/sec: 500\n"
    result = parse_result(output, concurrency=16)
    assert result == LoadResult(concurrency=16, requests=1000, duration_s=2.0, errors=10,
                                p50_ms=1.5, p90_ms=2.5, p99_ms=9.0, max_ms=12.0)
    assert result.rps == pytest.approx(495.0)


def test_parse_result_without_marker_names_the_output() -> None:
    with pytest.raises(LoadGenError, match="no result line"):
        parse_result("lua error: boom\n", concurrency=1)


def test_parse_result_with_a_missing_field_names_it() -> None:
    line = RESULT_MARKER + json.dumps({"requests": 1})
    with pytest.raises(LoadGenError, match="duration_us"):
        parse_result(line, concurrency=1)


def test_parse_result_with_broken_json_says_so() -> None:
    with pytest.raises(LoadGenError, match="unreadable"):
        parse_result(RESULT_MARKER + "{nope", concurrency=1)


def test_cpu_per_request_counts_successful_requests_only() -> None:
    result = LoadResult(concurrency=1, requests=1010, duration_s=1.0, errors=10, p50_ms=1,
                        p90_ms=1, p99_ms=1, max_ms=1, server_cpu_s=0.5)
    assert result.cpu_ms_per_request == pytest.approx(0.5)
    assert LoadResult(1, 0, 1.0, 0, 1, 1, 1, 1, 0.5).cpu_ms_per_request is None
    assert LoadResult(1, 5, 0.0, 0, 1, 1, 1, 1).rps == 0.0
