"""local_mode.errors: errors survive pickling (runner processes hand them on) as what they are."""

from __future__ import annotations

import pickle

from botocore.exceptions import ClientError

from local_mode.errors import ValidationException, error_class


class ImageMissing(ValidationException):
    """A subclass defined at module level, as the backends define theirs."""


def test_a_subclass_comes_back_as_itself_with_its_operation() -> None:
    error = ImageMissing("image 'x' is not in the local engine").for_operation("CreateModel")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is ImageMissing
    assert str(again) == str(error)
    assert again.operation_name == "CreateModel"
    assert again.response["Error"]["Code"] == "ValidationException"


def test_a_class_made_for_a_declared_code_comes_back_by_its_code() -> None:
    cls = error_class("ConflictException")
    again = pickle.loads(pickle.dumps(cls("busy", "CreateModel")))
    assert type(again) is error_class("ConflictException")
    assert isinstance(again, ClientError)
    assert again.response["Error"] == {"Code": "ConflictException", "Message": "busy"}
