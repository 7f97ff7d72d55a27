"""A toy model for the inference toolkit: ``model.json`` holds a name and a scale; a prediction
is the sum of a row's features times the scale. JSON answers also say which model, which model
directory and which loaded model answered (a token drawn when the model is loaded, one per
worker: the tests run one worker per container), so the tests can tell instances apart."""

import json
import os
import pathlib
import uuid

from sagemaker_inference import decoder, default_inference_handler, encoder


class ConformanceHandler(default_inference_handler.DefaultInferenceHandler):
    def default_model_fn(self, model_dir, context=None):
        model = json.loads(pathlib.Path(model_dir, "model.json").read_text())
        return dict(model, model_dir=str(model_dir), loaded=uuid.uuid4().hex)

    def default_input_fn(self, input_data, content_type, context=None):
        return decoder.decode(input_data, content_type)

    def default_predict_fn(self, data, model, context=None):
        rows = data.reshape(1, -1) if data.ndim == 1 else data
        return [round(float(sum(row)) * model["scale"], 6) for row in rows], model

    def default_output_fn(self, prediction, accept, context=None):
        values, model = prediction
        if accept == "text/csv":
            return encoder.encode([[v] for v in values], accept)
        return json.dumps({"predictions": values, "model": model["name"],
                           "model_dir": model["model_dir"],
                           "model_files": sorted(os.listdir(model["model_dir"])),
                           "loaded": model["loaded"],
                           "multi_model": os.environ.get("SAGEMAKER_MULTI_MODEL")})
