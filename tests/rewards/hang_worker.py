"""A verifier worker that hangs on the gold ``"hang"``: lets tests exercise the kill-and-replace path.

If the file named by ``RLMATH_SLOW_START`` exists when it starts, it sleeps 30 s first: a
replacement worker that is slow to import, for the test that a batch does not wait for it.
"""

import os
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

    if os.environ.get("RLMATH_SLOW_START") and os.path.exists(os.environ["RLMATH_SLOW_START"]):
        time.sleep(30)
    core.verify_extracted = hanging
    _worker_main(Connection(int(sys.argv[1])))
