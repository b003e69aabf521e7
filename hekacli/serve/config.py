"""The `heka serve` configuration: YAML file and/or command-line flags, validated up front.

```yaml
listeners:                       # one or more; a bare URL string is fine for tcp:// and udp://
  - tcp://127.0.0.1:5565
  - url: tls://127.0.0.1:5566
    cert: server.pem
    key: server-key.pem
    client_ca: ca.pem            # verify client certificates against this CA
    require_client_cert: true
    min_version: TLS12
signers:                         # "<name>_<version>": key   (or a list of {name, version, hmac_key})
  ops_0: "secret"
output:                          # where accepted messages go (default: JSONL on stdout)
  path: "-"                      # "-" stdout, a file, or "none"
  format: jsonl                  # jsonl | heka (framed); default heka for *.heka files
  message_matcher: "TRUE"
  message_signer: null
max_message_size: 65536
max_message_loops: 4
state_dir: ./heka-state
# plugin sections, handed unparsed to their factories (see hekacli.serve.plugin.PLUGIN_FACTORIES):
verify: true
filters: [...]
sandbox_manager: {...}
dashboard: 127.0.0.1:4352
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import check_keys, get_typed, load_yaml
from ..errors import ConfigError, HekaError
from ..framing import MAX_MESSAGE_SIZE, signers_from_config
from ..transport import parse_endpoint
from .plugin import PLUGIN_FACTORIES

CORE_KEYS = ("listeners", "signers", "output", "max_message_size", "max_message_loops", "state_dir")
LISTENER_KEYS = ("url", "cert", "key", "client_ca", "require_client_cert", "min_version", "name")
OUTPUT_KEYS = ("path", "format", "message_matcher", "message_signer", "name")
OUTPUT_FORMATS = ("jsonl", "heka")
DEFAULT_STATE_DIR = "heka-state"


@dataclass
class ListenerConfig:
    """One input endpoint."""

    url: str
    cert: str | None = None
    key: str | None = None
    client_ca: str | None = None
    require_client_cert: bool = False
    min_version: str | None = None

    @property
    def scheme(self) -> str:
        return parse_endpoint(self.url).scheme


@dataclass
class OutputConfig:
    """The built-in output: JSONL or framed records to stdout or a file, or nothing."""

    path: str = "-"  # "-" = stdout, "none" = discard
    format: str | None = None  # jsonl | heka; None = heka for *.heka paths, else jsonl
    message_matcher: str | None = None
    message_signer: str | None = None
    name: str = "output"

    @property
    def resolved_format(self) -> str:
        if self.format:
            return self.format
        return "heka" if self.path.endswith(".heka") else "jsonl"


@dataclass
class ServeConfig:
    """Everything `ServeDaemon` needs. `plugins` holds the plugin sections, unparsed."""

    listeners: list[ListenerConfig] = field(default_factory=list)
    signers: dict[str, bytes] = field(default_factory=dict)
    output: OutputConfig = field(default_factory=OutputConfig)
    max_message_size: int = MAX_MESSAGE_SIZE
    max_message_loops: int = 4
    state_dir: Path = field(default_factory=lambda: Path(DEFAULT_STATE_DIR))
    plugins: dict[str, Any] = field(default_factory=dict)
    count: int | None = None  # stop after this many accepted messages
    stats_file: str | None = None  # write the JSON summary here on stop
    source: str | None = None  # the YAML file this came from (for error messages)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, file: str | Path | None = None) -> ServeConfig:
        """Validate a parsed YAML mapping. Relative paths are taken relative to the file's directory."""
        src = str(file) if file is not None else None
        base = Path(file).resolve().parent if file is not None else None
        check_keys(data, (*CORE_KEYS, *PLUGIN_FACTORIES), file=src)
        cfg = cls(source=src)
        raw = data.get("listeners") or []
        if not isinstance(raw, list):
            raw = [raw]
        for i, item in enumerate(raw):
            cfg.listeners.append(_listener(item, f"listeners[{i}]", src, base))
        cfg.signers = signers_from_config(data.get("signers"), file=src)
        out = data.get("output")
        if out is not None:
            cfg.output = _output(out, src, base)
        size = get_typed(data, "max_message_size", int, MAX_MESSAGE_SIZE, file=src)
        if not 1024 < size < 2**32 - 1:
            raise ConfigError("max_message_size must be > 1024 and < 2^32-1", file=src,
                              field="max_message_size")
        cfg.max_message_size = size
        loops = get_typed(data, "max_message_loops", int, 4, file=src)
        if loops < 1:
            raise ConfigError("max_message_loops must be at least 1", file=src, field="max_message_loops")
        cfg.max_message_loops = loops
        state = get_typed(data, "state_dir", str, DEFAULT_STATE_DIR, file=src)
        cfg.state_dir = _rel(state, base)
        cfg.plugins = {k: data[k] for k in PLUGIN_FACTORIES if k in data and data[k] is not None}
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path) -> ServeConfig:
        return cls.from_mapping(load_yaml(path), file=path)

    def validate(self) -> None:
        """Checks that need the whole config (after flags were merged in)."""
        if not self.listeners and not self.plugins:
            raise ConfigError("nothing to do: give at least one --listen URL (or listeners: in --config)")
        seen: set[str] = set()
        for lc in self.listeners:
            ep = parse_endpoint(lc.url)
            if ep.scheme == "tls" and not (lc.cert and lc.key):
                raise ConfigError(f"listener {lc.url}: tls:// needs cert and key", file=self.source)
            if lc.require_client_cert and not lc.client_ca:
                raise ConfigError(f"listener {lc.url}: require_client_cert needs client_ca", file=self.source)
            if ep.url in seen and ep.port != 0:
                raise ConfigError(f"listener {lc.url} is given twice", file=self.source)
            seen.add(ep.url)
        if self.output.resolved_format not in OUTPUT_FORMATS:
            raise ConfigError(f"output format must be one of {', '.join(OUTPUT_FORMATS)}", file=self.source,
                              field="output.format")


def _rel(path: str, base: Path | None) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() or base is None else base / p


def _listener(item: Any, where: str, src: str | None, base: Path | None) -> ListenerConfig:
    if isinstance(item, str):
        item = {"url": item}
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where} must be a URL or a mapping", file=src, field=where)
    check_keys(item, LISTENER_KEYS, file=src, section=where)
    url = get_typed(item, "url", str, file=src, section=where)
    try:
        parse_endpoint(url)
    except HekaError as exc:
        raise ConfigError(exc.message, file=src, field=f"{where}.url") from None
    paths = {}
    for k in ("cert", "key", "client_ca"):
        v = get_typed(item, k, str, None, file=src, section=where)
        paths[k] = str(_rel(v, base)) if v else None
    return ListenerConfig(
        url=url, **paths,
        require_client_cert=get_typed(item, "require_client_cert", bool, False, file=src, section=where),
        min_version=get_typed(item, "min_version", str, None, file=src, section=where),
    )


def _output(item: Any, src: str | None, base: Path | None) -> OutputConfig:
    if isinstance(item, str):
        item = {"path": item}
    if not isinstance(item, Mapping):
        raise ConfigError("output must be a path or a mapping", file=src, field="output")
    check_keys(item, OUTPUT_KEYS, file=src, section="output")
    path = get_typed(item, "path", str, "-", file=src, section="output")
    fmt = get_typed(item, "format", str, None, file=src, section="output")
    if fmt is not None and fmt not in OUTPUT_FORMATS:
        raise ConfigError(f"output.format must be one of {', '.join(OUTPUT_FORMATS)}", file=src,
                          field="output.format")
    return OutputConfig(
        path=path if path in ("-", "none") else str(_rel(path, base)),
        format=fmt,
        message_matcher=get_typed(item, "message_matcher", str, None, file=src, section="output"),
        message_signer=get_typed(item, "message_signer", str, None, file=src, section="output"),
        name=get_typed(item, "name", str, "output", file=src, section="output"),
    )
