"""hekacli: Mozilla Heka's tools as one modern, pipe-friendly CLI and local log analyzer.

The core library: the Heka message model and wire codec, stream framing, the message matcher,
checkpointed log streams, transport, analysis and the Lua sandbox host. Command-line modules live in
`hekacli.commands` and never get imported from here.
"""

__version__ = "0.1.0"
