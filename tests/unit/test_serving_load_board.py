"""The shared load board the default gunicorn worker balances its accepts with."""

from __future__ import annotations

import os

import pytest

from toolkit.serving.worker import NOT_ACCEPTING, LoadBoard


def test_least_other_ignores_own_and_idle_slots() -> None:
    board = LoadBoard(4)
    assert board.least_other(0) is None  # nobody else serves
    board.write(0, 3)
    board.write(2, 5)
    assert board.least_other(0) == 5
    assert board.least_other(2) == 3
    board.write(1, 0)
    assert board.least_other(0) == 0
    assert board.least_other(3) == 0


def test_claim_takes_a_free_slot_and_clears_slots_of_gone_workers() -> None:
    board = LoadBoard(3)
    board.write(0, 7)
    board.write(1, 2)  # a worker that died without a child_exit
    assert board.claim({0}) == 1
    assert [board.read(i) for i in range(3)] == [7, NOT_ACCEPTING, NOT_ACCEPTING]
    assert board.claim({0, 1, 2}) is None


def test_workers_see_each_others_figures_across_fork() -> None:
    board = LoadBoard(2)
    board.write(0, 4)
    pid = os.fork()
    if pid == 0:  # the "worker": reads the master's figure, publishes its own
        board.write(1, board.read(0) + 1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert board.read(1) == 5
    assert board.least_other(0) == 5


def test_a_board_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        LoadBoard(0)
