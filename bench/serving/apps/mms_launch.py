"""Start the reference inference toolkit the way its images do, inside a temp directory.

Run by the interpreter of the separate MMS virtual environment. The toolkit's documented entry
is ``model_server.start_model_server(handler_service=...)``; it writes its generated MMS
configuration to a fixed path under /etc, so the benchmark points that one module attribute at
its temp directory first. Everything else (config content, ``multi-model-server --start``, the
wait on the Java process) is the reference's own behaviour.

Usage: python mms_launch.py CONFIG_PATH [HANDLER_SERVICE]
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    from sagemaker_inference import model_server

    model_server.MMS_CONFIG_FILE = argv[0]
    handler = argv[1] if len(argv) > 1 else model_server.DEFAULT_HANDLER_SERVICE
    model_server.start_model_server(handler_service=handler)


if __name__ == "__main__":
    main(sys.argv[1:])
