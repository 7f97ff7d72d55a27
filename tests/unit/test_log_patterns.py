"""CloudWatch Logs filter patterns: the term syntax parsed and matched as the service matches
unstructured events, and every other syntax, or text that does not parse, refused with the
service's InvalidParameterException."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local_mode import cloudwatch_logs
from local_mode.log_patterns import FilterPattern, InvalidParameterException, parse_filter_pattern

WORDS = st.text(alphabet="abcXYZ_019", min_size=1, max_size=4)
MESSAGES = st.text(alphabet="abcXYZ_019 .", min_size=1, max_size=30)


@given(terms=st.lists(WORDS, max_size=4), message=MESSAGES)
def test_plain_terms_must_all_appear(terms: list[str], message: str) -> None:
    pattern = parse_filter_pattern(" ".join(terms))
    assert pattern == FilterPattern(required=tuple(terms))
    assert pattern.matches(message) == all(term in message for term in terms)


@given(alternatives=st.lists(WORDS, min_size=1, max_size=4),
       excluded=st.lists(WORDS, max_size=2), message=MESSAGES)
def test_alternatives_and_exclusions(alternatives: list[str], excluded: list[str],
                                     message: str) -> None:
    text = " ".join([f"?{t}" for t in alternatives] + [f"-{t}" for t in excluded])
    assert parse_filter_pattern(text).matches(message) == (
        any(t in message for t in alternatives) and not any(t in message for t in excluded))


@given(phrase=st.text(alphabet="ab :=[]{}%?-", min_size=1, max_size=10), message=MESSAGES)
def test_quoted_phrases_match_literally(phrase: str, message: str) -> None:
    pattern = parse_filter_pattern(f' "{phrase}" ')
    assert pattern == FilterPattern(required=(phrase,))
    assert pattern.matches(message + phrase) and pattern.matches(message) == (phrase in message)


@given(st.text(max_size=60))
def test_any_pattern_parses_or_is_the_services_invalid_parameter(text: str) -> None:
    try:
        pattern = parse_filter_pattern(text)
    except InvalidParameterException as exc:
        assert exc.response["Error"]["Code"] == "InvalidParameterException"
    else:
        assert isinstance(pattern.matches(text), bool)



def test_a_pattern_mixes_terms_phrases_alternatives_and_exclusions() -> None:
    pattern = parse_filter_pattern('  ERROR "disk full"\t?host-1 ?host-2 -retrying  ')
    assert pattern == FilterPattern(required=("ERROR", "disk full"),
                                    any_of=("host-1", "host-2"), excluded=("retrying",))
    assert pattern.matches("ERROR on host-2: disk full")
    assert not pattern.matches("ERROR on host-3: disk full")  # none of the alternatives
    assert not pattern.matches("ERROR on host-1: disk full, retrying")  # excluded
    assert not pattern.matches("error on host-1: disk full")  # terms are case-sensitive
    assert parse_filter_pattern("") == FilterPattern()  # the empty pattern matches everything
    assert parse_filter_pattern("   ").matches("")
    assert parse_filter_pattern('-"no such"') == FilterPattern(excluded=("no such",))


@pytest.mark.parametrize(("text", "why"), [
    ('{ $.level = "ERROR" }', "Unsupported filter pattern"),
    ("[ip, user, status]", "Unsupported filter pattern"),
    ("%ERR[A-Z]+%", "Unsupported filter pattern"),
    ("ok -{ $.x = 1 }", "Unsupported filter pattern"),
    ('"open', "no closing quote"),
    ('"closed"glued', "must be followed by a space"),
    ('say"what', "a quote inside the term"),
    ("? alone", "must be followed by a term"),
    ("trailing -", "must be followed by a term"),
])
def test_what_it_does_not_evaluate_is_refused(text: str, why: str) -> None:
    with pytest.raises(InvalidParameterException, match=why) as info:
        parse_filter_pattern(text)
    assert info.value.response["Error"]["Code"] == "InvalidParameterException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_its_error_is_the_one_the_logs_client_raises() -> None:
    """Caught as ``client.exceptions.InvalidParameterException`` whichever module raised it."""
    assert InvalidParameterException is cloudwatch_logs.InvalidParameterException
