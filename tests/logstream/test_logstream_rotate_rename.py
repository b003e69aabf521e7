"""Real logrotate (rename+create, dateext, compress+delaycompress) against a writer at full rate,
with the tailer SIGKILLed at random moments and restarted. See conftest.torture for the rules."""

from __future__ import annotations

import zlib

import pytest


@pytest.mark.parametrize("mode", ["create", "dateext", "delaycompress"])
def test_logstream_rotation_survives_sigkill(rig, torture_run, mode):
    r = rig(mode)
    if mode == "create":
        # Widen the window between writing a batch and saving its checkpoint, so kills land in it:
        # the repeats must then come from that last batch only.
        r.crash_window = 0.03
    stats = torture_run(r, kills=4, seed=zlib.crc32(mode.encode()))
    assert stats["files"] >= 2, "logrotate did not rotate"
    assert stats["lines"] > 1000
