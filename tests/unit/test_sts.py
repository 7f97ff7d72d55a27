"""The local ``sts`` client: GetCallerIdentity names a stable local user of the client's account,
shaped as boto3 returns it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from botocore.exceptions import ParamValidationError
from hypothesis import given
from hypothesis import strategies as st

import local_mode
from local_mode.shapes import response_errors
from local_mode.sts import USER_NAME, StsClient, user_id


def test_caller_identity_is_the_local_user_of_the_default_account(tmp_path: Path) -> None:
    sts = local_mode.client("sts", state_dir=tmp_path, region_name="eu-west-1",
                            aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
    assert isinstance(sts, StsClient)
    identity = sts.get_caller_identity()
    assert response_errors("GetCallerIdentity", identity, service="sts") == []
    assert identity["Account"] == "000000000000"
    assert identity["Arn"] == f"arn:aws:iam::000000000000:user/{USER_NAME}"
    assert re.fullmatch(r"AIDA[A-Z2-7]{17}", identity["UserId"])
    assert identity["ResponseMetadata"]["HTTPStatusCode"] == 200
    again = StsClient().get_caller_identity()  # another client, another process: the same user
    assert again["UserId"] == identity["UserId"] and again["Arn"] == identity["Arn"]


def test_the_account_is_the_clients() -> None:
    identity = StsClient(aws_account_id="123456789012").get_caller_identity()
    assert identity["Account"] == "123456789012"
    assert identity["Arn"] == f"arn:aws:iam::123456789012:user/{USER_NAME}"
    assert identity["UserId"] != StsClient().get_caller_identity()["UserId"]


def test_it_is_called_as_boto3s() -> None:
    sts = StsClient()
    assert sts.OPERATIONS == {"get_caller_identity": "GetCallerIdentity"}
    with pytest.raises(TypeError, match="only accepts keyword arguments"):
        sts.get_caller_identity({})  # type: ignore[call-arg]
    with pytest.raises(ParamValidationError):
        sts.get_caller_identity(RoleArn="x")
    with pytest.raises(TypeError):
        StsClient(not_a_boto3_argument=1)
    assert not hasattr(sts, "assume_role")


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_user_ids_are_stable_and_iam_shaped(account: str) -> None:
    assert user_id(account) == user_id(account)
    assert re.fullmatch(r"AIDA[A-Z2-7]{17}", user_id(account))
