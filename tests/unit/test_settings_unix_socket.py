"""``OPTML_UNIX_SOCKET`` parsing: unset means no extra listener; only an absolute path short
enough for ``sun_path`` is accepted, anything else is a ConfigError naming the variable."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toolkit.errors import ConfigError
from toolkit.settings import MAX_UNIX_SOCKET_PATH, ServingSettings, Settings, TrainingSettings

VARIABLE = "OPTML_UNIX_SOCKET"


def _error(value: str) -> ConfigError:
    settings = Settings.from_environ({VARIABLE: value})
    with pytest.raises(ConfigError) as info:
        settings.serving  # noqa: B018 - the section is parsed on first access
    return info.value


def test_unset_or_empty_means_no_unix_listener() -> None:
    assert ServingSettings.from_environ({}).unix_socket is None
    assert ServingSettings.from_environ({VARIABLE: ""}).unix_socket is None
    assert ServingSettings().unix_socket is None


def test_an_absolute_path_is_taken_as_is() -> None:
    assert ServingSettings.from_environ({VARIABLE: "/run/optml/serve.sock"}).unix_socket == \
        "/run/optml/serve.sock"


def test_the_longest_allowed_path_is_accepted() -> None:
    path = "/" + "s" * (MAX_UNIX_SOCKET_PATH - 1)
    assert ServingSettings.from_environ({VARIABLE: path}).unix_socket == path


@pytest.mark.parametrize("value", ["serve.sock", "./serve.sock", "run/serve.sock", " /x.sock",
                                   "~/serve.sock"])
def test_a_relative_path_is_refused_naming_the_variable(value: str) -> None:
    error = _error(value)
    assert error.field == VARIABLE
    assert VARIABLE in str(error)
    assert repr(value) in str(error)


def test_a_path_one_byte_too_long_is_refused_naming_the_variable() -> None:
    error = _error("/" + "s" * MAX_UNIX_SOCKET_PATH)
    assert error.field == VARIABLE
    assert VARIABLE in str(error)
    assert str(MAX_UNIX_SOCKET_PATH) in str(error)


def test_the_limit_counts_bytes_not_characters() -> None:
    # 60 two-byte characters: 61 characters, 121 bytes
    error = _error("/" + "é" * 60)
    assert error.field == VARIABLE


def test_a_bad_socket_path_does_not_break_training() -> None:
    settings = Settings.from_environ({VARIABLE: "relative.sock"})
    assert settings.training == TrainingSettings()  # the training section parses on its own


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\0"),
               max_size=2 * MAX_UNIX_SOCKET_PATH))
def test_accepted_exactly_when_absolute_and_short_enough(tail: str) -> None:
    for value in (tail, "/" + tail):
        if value == "":
            continue
        fits = value.startswith("/") and len(value.encode()) <= MAX_UNIX_SOCKET_PATH
        if fits:
            assert ServingSettings.from_environ({VARIABLE: value}).unix_socket == value
        else:
            with pytest.raises(ConfigError) as info:
                ServingSettings.from_environ({VARIABLE: value})
            assert info.value.field == VARIABLE


def test_a_non_utf8_path_is_measured_in_file_system_bytes() -> None:
    """os.environ carries bytes that are not UTF-8 as lone surrogates (surrogateescape); the
    length check must count the path's file-system bytes, not crash encoding it as UTF-8."""
    value = "/tmp/\udcff.sock"  # what os.environ holds for b"/tmp/\xff.sock"
    assert ServingSettings.from_environ({VARIABLE: value}).unix_socket == value
    error = _error("/" + "\udcff" * MAX_UNIX_SOCKET_PATH)
    assert error.field == VARIABLE
