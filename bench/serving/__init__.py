"""The serving benchmark: optml ``serve`` against named peers, in one run on one machine.

Peers: the reference inference toolkit on Multi Model Server, the classic nginx + gunicorn +
Flask bring-your-own pattern, and a bare gunicorn WSGI app (the ceiling). The same load
generator (``wrk``) drives every server over loopback with keep-alive. The runner is
``bench/bench_serving.py``; the peers are installed by ``scripts/bench-serving-setup.sh``.

Modules: :mod:`.processes` (start / wait / stop server process groups), :mod:`.loadgen` (wrk
and its Lua script), :mod:`.fixtures` (model trees and payloads), :mod:`.servers` (how each
server is started), :mod:`.report` (table, ratios, targets).
"""
