"""Reading an instance's CPU and memory, and the percentages the service publishes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from local_mode.endpoints.usage import (
    Usage,
    UsageSampler,
    combined,
    docker_stats_usage,
    process_tree_usage,
)


def test_a_process_usage_is_read_from_proc() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time\nx = bytearray(30 << 20)\n"
                              "t = time.process_time()\nwhile time.process_time() - t < 0.2: "
                              "pass\nprint('ready', flush=True)\ntime.sleep(30)"],
                             stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        usage = process_tree_usage(child.pid, 1 << 30)
        assert usage is not None
        assert usage.cpu_seconds >= 0.15
        assert usage.memory_bytes >= 30 << 20
        assert usage.memory_limit == 1 << 30
    finally:
        child.kill()
        child.wait()
    assert process_tree_usage(child.pid, 1 << 30) is None  # gone


def test_the_engines_stats_are_read_as_the_docker_cli_reads_them() -> None:
    stats = {"cpu_stats": {"cpu_usage": {"total_usage": 2_500_000_000}},
             "memory_stats": {"usage": 300 << 20, "limit": 1 << 30,
                              "stats": {"inactive_file": 100 << 20}}}
    assert docker_stats_usage(stats) == Usage(2.5, 200 << 20, 1 << 30)
    assert docker_stats_usage({"cpu_stats": {}, "memory_stats": {}}) is None  # exited


def test_percentages_need_two_readings() -> None:
    sampler = UsageSampler()
    assert sampler.sample("a", Usage(10.0, 100, 400), 100.0) is None
    cpu, memory = sampler.sample("a", Usage(13.0, 200, 400), 102.0) or (None, None)
    assert cpu == pytest.approx(150.0)  # 1.5 cores busy
    assert memory == pytest.approx(50.0)
    assert sampler.sample("a", Usage(13.0, 200, 400), 102.0) is None  # no time passed
    sampler.forget({"b"})
    assert sampler.sample("a", Usage(20.0, 200, 400), 110.0) is None  # forgotten: first again


def test_a_pipelines_containers_add_up() -> None:
    assert combined([]) is None
    assert combined([Usage(1.0, 10, 100), Usage(2.0, 20, 300)]) == Usage(3.0, 30, 300)


def test_a_servers_workers_are_counted_with_it() -> None:
    server = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time\n"
                               "w = subprocess.Popen([sys.executable, '-c', "
                               "'x = bytearray(40 << 20); import time; print(1, flush=True); "
                               "time.sleep(30)'], stdout=subprocess.PIPE)\n"
                               "w.stdout.readline(); print('ready', flush=True); time.sleep(30)"],
                              stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert server.stdout is not None and server.stdout.readline() == b"ready\n"
        usage = process_tree_usage(server.pid, 1)
        assert usage is not None and usage.memory_bytes >= 40 << 20  # the worker's
    finally:
        os.killpg(server.pid, 9)
        server.wait()
