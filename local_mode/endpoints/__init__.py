"""Local endpoints: models, endpoint configs and endpoints run as processes behind a router.

- :mod:`.spec` turns CreateModel / CreateEndpointConfig requests into typed specs;
- :mod:`.staging` fetches and safely extracts model artifacts;
- :mod:`.backends` starts serving containers (``optml serve`` processes, or Docker);
- :mod:`.http` is the lean asyncio HTTP/1.1 code the router uses on both sides;
- :mod:`.router` routes invocations over variants and instances, with health checks;
- :mod:`.runner` is the detached process that owns one endpoint from Creating to Deleting.
"""
