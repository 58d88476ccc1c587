"""``python dev/storage_emulator.py start ...``: the Cloud Storage emulator (PyPI
``gcp-storage-emulator``, the same arguments) with a listen backlog that takes a burst.

The emulator serves with the standard library's ``http.server.HTTPServer``, which listens with
a backlog of 5: when a burst of workers store their sketches at once, the connections past it
are dropped and each client retries 1 s, then 3 s later (docs/decisions/0052). Cloud Storage
has no such queue; a backlog of 1024 lets the emulator take the burst and answer in turn.
"""

from __future__ import annotations

import runpy
import socketserver

socketserver.TCPServer.request_queue_size = 1024  # read by listen(), in this process only

if __name__ == "__main__":
    runpy.run_module("gcp_storage_emulator", run_name="__main__", alter_sys=True)
