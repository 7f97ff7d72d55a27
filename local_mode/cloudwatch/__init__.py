"""CloudWatch as local mode keeps it: metric datapoints (:mod:`.datums`) recorded by endpoint
routers and training runners, read back with the ``cloudwatch`` API shapes, and alarms."""
