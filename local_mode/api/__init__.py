"""The operations of the local ``sagemaker`` client, one module per resource kind.

:mod:`.base` holds what every kind shares (the state store, settings, the backend choice,
not-found errors, runners; ARNs and boto3's client surface come from
:mod:`local_mode.client_base`); :mod:`.training`, :mod:`.endpoints` (models, endpoint configs and
endpoints) and :mod:`.transform` each build on it alone, never on one another, and
:class:`local_mode.sagemaker.SageMakerClient` composes them.
"""
