"""The entrypoint of the inference toolkit's README: `serve` starts Multi Model Server with our
handler service; any other command runs as given."""

import subprocess
import sys

from sagemaker_inference import model_server

if sys.argv[1:] == ["serve"]:
    model_server.start_model_server(handler_service="handler_service")
else:
    sys.exit(subprocess.call(sys.argv[1:]))
