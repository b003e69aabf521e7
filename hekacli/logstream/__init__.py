"""Log streams: discovery of rotated files, Heka journals (checkpoints), the rotation-proof reader."""
