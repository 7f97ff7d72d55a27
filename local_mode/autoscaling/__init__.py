"""Application Auto Scaling for local endpoints' production variants.

- :mod:`.ids`: the one scalable dimension local mode scales (``sagemaker:variant:
  DesiredInstanceCount``), its resource ids (``endpoint/<endpoint>/variant/<variant>``) and ARNs;
- :mod:`.policies`: scalable targets and scaling policies as typed values, checked as the service
  checks them;
- :mod:`.store`: targets, policies and scaling activities in the state directory, shared by the
  API and the endpoint runner;
- :mod:`.decide`: what a target's policies decide from its alarms' states (pure);
- :mod:`.client`: the ``application-autoscaling`` client.
"""
