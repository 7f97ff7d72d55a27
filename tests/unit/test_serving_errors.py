"""Mapping exceptions to JSON error responses."""

from __future__ import annotations

import pytest

from toolkit.formats.errors import FormatError
from toolkit.serving import HTTPError
from toolkit.serving.errors import NotAcceptable, UserCodeFailed, error_response


class WithStatus(Exception):
    status_code = 422


class WithBadStatus(Exception):
    status_code = "404"


def test_http_error_keeps_its_status_and_message() -> None:
    resp = error_response(UserCodeFailed("predict_fn", HTTPError(429, "slow down")))
    assert (resp.status, resp.error, resp.message) == (429, "too_many_requests", "slow down")
    assert resp.body() == {"error": "too_many_requests", "message": "slow down"}


def test_http_error_validates_status() -> None:
    with pytest.raises(ValueError):
        HTTPError(200, "fine")
    with pytest.raises(ValueError):
        HTTPError(600, "no")


def test_any_exception_with_integer_status_code() -> None:
    resp = error_response(UserCodeFailed("input_fn", WithStatus("unprocessable")))
    assert (resp.status, resp.error) == (422, "unprocessable_entity")
    assert "unprocessable" in resp.message


@pytest.mark.parametrize(("exc", "status"), [
    (UserCodeFailed("predict_fn", MemoryError()), 507),
    (UserCodeFailed("input_fn", FormatError("bad", source="request body", offset=3)), 400),
    (UserCodeFailed("predict_fn", ValueError("boom")), 500),
    (UserCodeFailed("predict_fn", WithBadStatus("x")), 500),
    (NotAcceptable("no"), 406),
    (RuntimeError("server bug"), 500),
])
def test_statuses(exc: Exception, status: int) -> None:
    assert error_response(exc).status == status


def test_user_500_names_the_handler_but_server_500_says_nothing() -> None:
    user = error_response(UserCodeFailed("predict_fn", ValueError("boom")))
    assert user.message == "predict_fn raised ValueError: boom"
    server = error_response(RuntimeError("secret detail"))
    assert "secret" not in server.message


def test_traceback_only_in_debug() -> None:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        failed = UserCodeFailed("predict_fn", exc)
    assert "traceback" not in error_response(failed).body()
    assert "ValueError: boom" in error_response(failed, debug=True).body()["traceback"]
