"""Entry point of a verifier worker process: ``python -m rewards.worker FD`` (started by the pool)."""

import sys
from multiprocessing.connection import Connection

if __name__ == "__main__":
    from rewards.pool import _worker_main

    _worker_main(Connection(int(sys.argv[1])))
