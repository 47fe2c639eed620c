"""Two operator processes (old and new during a rollout) appending to one log at once."""

import itertools
import multiprocessing
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path

from aiops.audit import AuditLog, verify

WRITERS = 4
EACH = 40


def _append_many(root: str, writer: int, ready: Barrier) -> None:
    log = AuditLog(Path(root))
    # Every writer waits for the others: spawned interpreters start seconds apart on a busy
    # machine, and a writer that finished before the next began would prove nothing.
    ready.wait(timeout=60)
    for i in range(EACH):
        log.append("ns", "inc", "tool.call", {"writer": writer, "i": i})
        time.sleep(0.001)  # a writer between two records, as in an operator


def test_processes_appending_at_once_make_one_valid_chain(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(WRITERS)
    workers = [
        context.Process(target=_append_many, args=(str(tmp_path), w, ready)) for w in range(WRITERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0] * WRITERS

    log = AuditLog(tmp_path)
    result = verify(log.path("ns", "inc"))
    assert (result.ok, result.records, result.problems) == (True, WRITERS * EACH, [])
    records = log.read("ns", "inc")
    assert [r.seq for r in records] == list(range(WRITERS * EACH))
    for writer in range(WRITERS):
        mine = [r.data["i"] for r in records if r.data["writer"] == writer]
        assert mine == list(range(EACH))  # every record, in its writer's order
    # Interleaved, or the test proved nothing about concurrency.
    switches = sum(a.data["writer"] != b.data["writer"] for a, b in itertools.pairwise(records))
    assert switches >= WRITERS
