"""Log decoders: each compiles a format string into a streaming and a bulk decoder."""
