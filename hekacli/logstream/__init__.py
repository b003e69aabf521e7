"""Log streams: discovery of rotated files, Heka journals (checkpoints), the rotation-proof reader.

Modules, each with one job:

- `config`    YAML and Heka TOML `LogstreamerInput` sections -> `StreamConfig`
- `discovery` file_match / priority / differentiator / translation -> streams of files, oldest first
- `journal`   Heka journal format, hashes (plain and gzip), atomic writes
- `locate`    where a stream's next read starts, and why (shared by `tail` and `explain`)
- `reader`    `StreamReader`: batches of whole records through rotation, truncation and compression
- `sink`      formats (raw / jsonl / heka) and whole-record writes
- `tailer`    runs the streams: write, then checkpoint; follow with watchdog and polling
- `status`    read-only views for `list`, `explain` and `checkpoints`
"""
