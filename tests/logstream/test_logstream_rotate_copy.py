"""Real logrotate in the modes that copy or compress (copytruncate, compress without delaycompress)
with the writer paused across logrotate's own lossy step, the tailer SIGKILLed and restarted."""

from __future__ import annotations

import zlib

import pytest


@pytest.mark.parametrize("mode", ["copytruncate", "compress", "copytruncate-compress"])
def test_logstream_copy_rotation_survives_sigkill(rig, torture_run, mode):
    r = rig(mode)
    stats = torture_run(r, kills=4, seed=zlib.crc32(mode.encode()))
    assert stats["files"] >= 2, "logrotate did not rotate"
    assert stats["lines"] > 1000
