"""A client shaped like boto3's ``sts``: ``get_caller_identity`` for the local account.

Tools ask STS who they are before they build ARNs, role names or bucket names (the SageMaker SDK
names its default bucket after the account). Locally the caller is a fixed user of the client's
account (``aws_account_id``, default 000000000000), so the answer is the same in every call and
every process, and agrees with the account in the other local clients' ARNs.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from local_mode.client_base import LocalClient
from toolkit.settings import Settings

SERVICE = "sts"
USER_NAME = "optml-local"

__all__ = ["USER_NAME", "StsClient", "user_id"]


def user_id(account_id: str) -> str:
    """The local user's unique id, shaped as IAM's user ids (``AIDA`` and 17 more characters
    of A-Z and 2-7) and derived from the account, so it is stable."""
    digest = hashlib.sha256(f"{account_id}:{USER_NAME}".encode()).digest()
    return "AIDA" + base64.b32encode(digest).decode()[:17]


class StsClient(LocalClient):
    """The local ``sts`` client. It takes boto3's client arguments
    (:class:`local_mode.client_base.LocalClient`); ``settings`` and ``state_dir`` are accepted,
    as every local client takes them, and mean nothing here."""

    SERVICE = SERVICE

    def __init__(self, settings: Settings | None = None, *,
                 state_dir: str | Path | None = None, **client_args: Any) -> None:
        super().__init__(**client_args)

    def get_caller_identity(self, **request: Any) -> dict[str, Any]:
        return {"UserId": user_id(self.account_id), "Account": self.account_id,
                "Arn": f"arn:aws:iam::{self.account_id}:user/{USER_NAME}"}
