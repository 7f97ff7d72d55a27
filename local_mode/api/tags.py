"""AddTags, ListTags and DeleteTags: the tags of every resource kind, addressed by ARN.

The SDK reads a job's tags when it attaches to it (``Estimator.attach``) and users tag what they
create; the service keeps them beside the resource rather than in its description, and so does
local mode (the create request's ``Tags``, then the ``Tags`` key of the stored description once they change,
which no Describe operation shows).
"""

from __future__ import annotations

from typing import Any

from local_mode.api.base import SageMakerBase
from local_mode.errors import ResourceNotFound, ValidationException
from local_mode.state import ResourceDir

ARN_KINDS = {"training-job": "training-jobs", "model": "models",
             "endpoint-config": "endpoint-configs", "endpoint": "endpoints",
             "transform-job": "transform-jobs", "processing-job": "processing-jobs"}
"""The resource type an ARN names -> the state store's kind."""
MAX_TAGS = 50


class TagsAPI(SageMakerBase):
    """AddTags, ListTags, DeleteTags."""

    def add_tags(self, ResourceArn: str, Tags: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803 - the service's member names
        resource = self._tagged(ResourceArn)
        created = _created_tags(resource)

        def change(description: dict[str, Any]) -> None:
            tags = {t["Key"]: t["Value"] for t in description.get("Tags", created)}
            tags |= {t["Key"]: t.get("Value", "") for t in Tags}
            if len(tags) > MAX_TAGS:
                raise ValidationException(f"A resource can have at most {MAX_TAGS} tags")
            description["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]

        return {"Tags": resource.update(change)["Tags"]}

    def list_tags(self, ResourceArn: str, **page: Any) -> dict[str, Any]:  # noqa: N803 - the service's member name
        # at most 50 tags, and MaxResults is at least 50: one page always holds them all
        if page.get("NextToken"):
            raise ValidationException("NextToken: not a token this service issued")
        resource = self._tagged(ResourceArn)
        try:
            return {"Tags": list(resource.describe().get("Tags", _created_tags(resource)))}
        except FileNotFoundError:  # deleted since it was found
            raise ResourceNotFound(f"Resource {ResourceArn} not found.") from None

    def delete_tags(self, ResourceArn: str, TagKeys: list[str]) -> dict[str, Any]:  # noqa: N803 - the service's member names
        resource = self._tagged(ResourceArn)
        created = _created_tags(resource)

        def change(description: dict[str, Any]) -> None:
            description["Tags"] = [t for t in description.get("Tags", created)
                                   if t["Key"] not in TagKeys]

        resource.update(change)
        return {}

    def _tagged(self, arn: str) -> ResourceDir:
        """The resource ``arn`` names (ARNs carry the name lower-cased)."""
        parts = arn.split(":", 5)
        kind, _, name = (parts[5] if len(parts) == 6 else "").partition("/")
        if parts[:3] != ["arn", "aws", "sagemaker"] or kind not in ARN_KINDS or not name:
            raise ValidationException(f"{arn} is not the ARN of a resource local mode keeps")
        if parts[3:5] != [self.meta.region_name, self.account_id]:
            raise ValidationException(f"{arn} belongs to another region or account than this "
                                      f"one ({self.meta.region_name}, {self.account_id})")
        for resource in self.store.list(ARN_KINDS[kind]):
            if resource.name.lower() == name.lower():
                return resource
        raise ResourceNotFound(f"Resource {arn} not found.")


def _created_tags(resource: ResourceDir) -> list[dict[str, str]]:
    """The tags the resource was created with (until AddTags or DeleteTags changes them)."""
    tags = resource.request().get("Tags", [])
    return [{"Key": t["Key"], "Value": t.get("Value", "")} for t in tags]
