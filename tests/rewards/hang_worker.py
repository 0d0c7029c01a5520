"""A verifier worker that hangs on the gold ``"hang"``: lets tests exercise the kill-and-replace path."""

import sys
import time
from multiprocessing.connection import Connection

if __name__ == "__main__":
    import rewards.core as core
    from rewards.pool import _worker_main

    original = core.verify_extracted

    def hanging(gold, candidates, options):
        if gold == "hang":
            time.sleep(600)
        return original(gold, candidates, options)

    core.verify_extracted = hanging
    _worker_main(Connection(int(sys.argv[1])))
