"""Wake a caller blocked on a vLLM engine core that has died, instead of letting it wait forever.

vLLM's synchronous multiprocess client (``SyncMPClient``) watches its engine-core process from a
monitor thread. When the process dies, that thread marks the client dead and shuts it down, which
stops the output thread, but nothing is put into the queue that ``get_output()`` blocks on. A
``generate`` in flight at that moment then waits forever. We saw this once in a fresh-clone test run
after a SIGKILL of the engine core. vLLM's async client puts an ``EngineDeadError`` into its queue in
the same situation. This watchdog does the same for the sync client, so the call raises, and the
sampler's one restart (or its clear error) takes over.
"""

from __future__ import annotations

import threading
import time


def watch_engine(llm, poll_s: float = 0.5) -> threading.Thread | None:
    """Start a daemon thread that wakes ``llm``'s blocked caller once its engine core is marked dead.

    Returns ``None`` for an in-process engine (``VLLM_ENABLE_V1_MULTIPROCESSING=0``): there is no
    child process to lose. The thread ends when the client is dead for any reason; after a normal
    shutdown it puts the error into a queue nobody reads any more.
    """
    client = llm.llm_engine.engine_core
    outputs, resources = getattr(client, "outputs_queue", None), getattr(client, "resources", None)
    if outputs is None or resources is None:
        return None
    from vllm.v1.engine.exceptions import EngineDeadError

    def wake_on_death() -> None:
        while not resources.engine_dead:
            time.sleep(poll_s)
        outputs.put_nowait(EngineDeadError())

    thread = threading.Thread(target=wake_on_death, daemon=True, name="rlmath-engine-watchdog")
    thread.start()
    return thread
