"""`python -m reconciler.localcluster.listen ADDR PORT...`: a node's stand-in services.

Run inside a node's network namespace by the dataplane, so that SSH (22), the API
server (6443) and any other port can be probed on the node's address for as long as the
local cluster runs. TCP connections are accepted and closed; nothing is served.
"""

from __future__ import annotations

import signal
import sys

from reconciler.localcluster.probe import Listener


def main(argv: list[str]) -> None:
    addr, *ports = argv
    for port in ports:
        Listener("", addr, int(port)).start()
    while True:
        signal.pause()  # until SIGTERM from `local-cluster down`


if __name__ == "__main__":
    main(sys.argv[1:])
