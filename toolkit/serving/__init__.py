"""The model server of the /opt/ml contract (``optml serve``); see docs/serving.md.

Handler code imports its public names from here: :class:`HTTPError` (answer with a status of
your choice) and :class:`RequestContext` (the optional trailing ``context`` argument).
"""

from toolkit.serving.context import LoadContext, RequestContext
from toolkit.serving.errors import HTTPError

__all__ = ["HTTPError", "LoadContext", "RequestContext"]
