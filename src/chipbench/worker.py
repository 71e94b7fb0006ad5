"""`python -m chipbench.worker FD DEVICE`: the benchmark worker's entry point.

Its name is part of the worker protocol: `chipbench ab` starts the worker of another environment (often
another chipbench version) by this name, so it stays here whatever the layout of the package.
"""

from __future__ import annotations

import os
import signal
import sys
from multiprocessing.connection import Connection

if __name__ == "__main__":
    # Ctrl-C at the terminal reaches the worker too: the parent handles it, from the first millisecond
    # (the import below takes about a second with torch), so no traceback of this process reaches it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from chipbench.execution.worker import worker_main

    worker_main(Connection(int(sys.argv[1])), sys.argv[2])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown (about 0.5 s with torch loaded): nothing is left to flush
