"""The handler service Multi Model Server loads: the toolkit's DefaultHandlerService with our
inference handler (Multi Model Server wants exactly one class in this module)."""

from conformance_handler import ConformanceHandler
from sagemaker_inference.default_handler_service import DefaultHandlerService
from sagemaker_inference.transformer import Transformer


class HandlerService(DefaultHandlerService):
    def __init__(self):
        super().__init__(transformer=Transformer(default_inference_handler=ConformanceHandler()))
