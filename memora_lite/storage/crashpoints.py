"""Named crash points for fault-injection tests: ``MEMORA_LITE_CRASH_AT=<name>`` ends the process there.

The engine calls :func:`reach` at each step of a flush, a background flush (``freeze.*``
on the writing thread, ``background.*`` on the flush thread) and a compaction; when the
environment variable names that step the process exits at once with status 99,
as ``kill -9`` would leave it (no cleanup, no flush, no close). Tests run a writer
in a subprocess with the variable set, then reopen the store and check it.

>>> NAMES[:2]
('flush.segment_written', 'flush.deletes_written')
>>> reach("flush.done")  # not set: nothing happens
"""

from __future__ import annotations

import os

ENV = "MEMORA_LITE_CRASH_AT"
NAMES = (
    "flush.segment_written",
    "flush.deletes_written",
    "flush.wal_created",
    "flush.manifest_written",
    "flush.manifest_installed",
    "flush.done",
    "freeze.wal_created",
    "freeze.manifest_installed",
    "background.segment_written",
    "background.manifest_written",
    "background.done",
    "compact.segments_written",
    "compact.manifest_installed",
)
EXIT_STATUS = 99


def reach(name: str) -> None:
    """Exit the process now if ``$MEMORA_LITE_CRASH_AT`` names this step ("" names no step)."""
    if name and os.environ.get(ENV) == name:
        os._exit(EXIT_STATUS)
