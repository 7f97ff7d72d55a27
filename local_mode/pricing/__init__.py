"""What local jobs and endpoints would cost on the service: ``optml local cost``.

- :mod:`.table` reads the price table: ``prices.json`` shipped here (on-demand prices per
  instance type, use and region, ML storage, a spot saving; its date, version and source in it),
  with the user's own table (``OPTML_LOCAL_PRICES_FILE``) merged over it;
- :mod:`.estimate` prices a training job, processing job, transform job or endpoint from its
  description (and an endpoint's capacity log, :mod:`local_mode.endpoints.capacity`).

Estimates only: the figures are the table's, not a bill. docs/cost.md says what is counted.
"""
