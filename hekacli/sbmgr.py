"""The sandbox-manager control protocol (Heka §4.3, §5) and the client side of `heka sbmgr`.

This module holds what both ends share:

- the control message: `build_control_message` (Type ``heka.control.sandbox``, Logger ``hekad``,
  Field ``config`` with representation ``toml`` or Field ``name``, then Field ``action`` last);
- `parse_filter_config`: the submitted TOML section, validated exactly as the manager validates it
  (so ``heka sbmgr load --dry-run`` finds the same errors before anything is sent);
- `normalize_name` (Go RE2 ``\\W`` -> ``_``) and `full_filter_name` (``<manager>-<section>``);

and the client: `SbmgrConfig` (Heka's ``sbmgr.toml``: ``ip_address``, ``use_tls``, ``[signer]``,
``[tls]``, plus our ``dashboard`` and ``manager`` keys), `send_control` (always signed, over TCP or
TLS) and `DashboardClient` / `wait_for_outcome`, which poll the dashboard's JSON API until the
manager has handled the message (the message uuid identifies it) and the sandbox runs or has failed.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, InputError, NetworkError, SandboxError
from .message import Field, Message, ValueType

CONTROL_TYPE = "heka.control.sandbox"
TERMINATED_TYPE = "heka.sandbox-terminated"
CONTROL_LOGGER = "hekad"
MAX_SKEW_SECONDS = 5  # |now - timestamp| >= this discards a control message (Heka §5.1)

# Heka's manager defaults (§5).
DEFAULT_MEMORY_LIMIT = 8 * 1024 * 1024
DEFAULT_INSTRUCTION_LIMIT = 1_000_000
DEFAULT_OUTPUT_LIMIT = 63 * 1024

_NON_WORD = re.compile(r"[^0-9A-Za-z_]")


def normalize_name(name: str) -> str:
    """Heka's name normalisation: every char outside ``[0-9A-Za-z_]`` becomes ``_``."""
    return _NON_WORD.sub("_", name)


def full_filter_name(manager: str, section: str) -> str:
    """The running name of a managed filter: ``normalize(manager) + "-" + normalize(section)``."""
    return f"{normalize_name(manager)}-{normalize_name(section)}"


# -- control messages --------------------------------------------------------------------------------


def build_control_message(
    action: str,
    *,
    script: str | None = None,
    config: str | None = None,
    name: str | None = None,
    hostname: str | None = None,
    timestamp: int | None = None,
) -> Message:
    """A control message shaped exactly like heka-sbmgr's.

    ``load`` carries the script as Payload and the TOML text in Field ``config`` (representation
    ``toml``); ``unload`` carries the unprefixed section name in Field ``name``. ``action`` is always
    the last field.
    """
    msg = Message.new(
        type=CONTROL_TYPE,
        logger=CONTROL_LOGGER,
        hostname=socket.gethostname() if hostname is None else hostname,
    )
    if timestamp is not None:
        msg.timestamp = timestamp
    if action == "load":
        msg.payload = script if script is not None else ""
        msg.fields.append(Field("config", ValueType.STRING, "toml", [config if config is not None else ""]))
    elif action == "unload":
        msg.fields.append(Field("name", ValueType.STRING, "", [name if name is not None else ""]))
    msg.fields.append(Field("action", ValueType.STRING, "", [action]))
    return msg


def control_action(msg: Message) -> str | None:
    """First value of the first field named ``action`` when it is a STRING (Heka's rule), else None."""
    f = msg.find_field("action")
    if f is None or f.value_type is not ValueType.STRING or not f.values:
        return None
    return str(f.values[0])


def string_field(msg: Message, name: str) -> str | None:
    """First value of the first field `name` when it is a STRING, else None."""
    f = msg.find_field(name)
    if f is None or f.value_type is not ValueType.STRING or not f.values:
        return None
    return str(f.values[0])


def skew_seconds(msg: Message, now_ns: int | None = None) -> int:
    """Whole seconds between now and the message timestamp (absolute; a missing timestamp is 0)."""
    now = time.time_ns() if now_ns is None else now_ns
    return abs(now - (msg.timestamp or 0)) // 1_000_000_000


# -- the submitted filter config ---------------------------------------------------------------------

# SandboxFilter settings (common filter + sandbox parameters) a submitted section may hold.
# Decoded strictly, as Heka 0.10 did: anything else is an error.
_FILTER_KEYS: dict[str, tuple[type, ...]] = {
    "type": (str,),
    "message_matcher": (str,),
    "message_signer": (str,),
    "ticker_interval": (int,),
    "can_exit": (bool,),
    "use_buffering": (bool,),
    "filename": (str,),
    "script_type": (str,),
    "preserve_data": (bool,),
    "memory_limit": (int,),
    "instruction_limit": (int,),
    "output_limit": (int,),
    "module_directory": (str,),
    "profile": (bool,),
    "timer_event_on_shutdown": (bool,),
    "config": (dict,),
}


@dataclass(slots=True)
class FilterSpec:
    """One validated SandboxFilter section from a submitted TOML config."""

    section: str
    message_matcher: str
    message_signer: str | None = None
    ticker_interval: int = 0
    preserve_data: bool = False
    timer_event_on_shutdown: bool = False
    script_type: str = "lua"
    config: dict[str, Any] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)  # keys the manager overrides (limits, filename, ...)


def parse_filter_config(text: str, *, source: str = "config") -> FilterSpec:
    """Validate a submitted TOML config as the manager does; raise ConfigError naming the key.

    Differences from Heka, on purpose: several sections are an error (Heka picked one in Go map
    order, i.e. at random), and ``message_matcher`` is required.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", file=source) from None
    sections = [k for k, v in doc.items() if isinstance(v, dict)]
    stray = [k for k, v in doc.items() if not isinstance(v, dict)]
    if stray:
        raise ConfigError(
            "top-level keys are not allowed; put them in the filter's section", file=source, field=stray[0]
        )
    if len(sections) != 1:
        raise ConfigError(
            f"the config must hold exactly one section, found {len(sections)}"
            + (f" ({', '.join(sections)})" if sections else ""),
            file=source,
        )
    section = sections[0]
    body: dict[str, Any] = doc[section]
    for key, value in body.items():
        kinds = _FILTER_KEYS.get(key)
        if kinds is None:
            raise ConfigError(f"unknown config setting in [{section}]", file=source, field=key)
        if not isinstance(value, kinds) or (kinds == (int,) and isinstance(value, bool)):
            raise ConfigError(
                f"[{section}] expects a {kinds[0].__name__}, got {type(value).__name__}",
                file=source,
                field=key,
            )
    plugin_type = body.get("type", section)  # Heka: the type defaults to the section name
    if plugin_type != "SandboxFilter":
        raise ConfigError(f"Plugin must be a SandboxFilter, received {plugin_type}", file=source)
    matcher = body.get("message_matcher")
    if not matcher:
        raise ConfigError(f"[{section}] message_matcher is required", file=source, field="message_matcher")
    script_type = body.get("script_type", "lua")
    if script_type != "lua":
        raise ConfigError(
            f"[{section}] only script_type 'lua' is supported", file=source, field="script_type"
        )
    ticker = body.get("ticker_interval", 0)
    if ticker < 0:
        raise ConfigError(f"[{section}] must be >= 0", file=source, field="ticker_interval")
    ignored = [
        k
        for k in ("filename", "module_directory", "memory_limit", "instruction_limit", "output_limit")
        if k in body
    ]
    return FilterSpec(
        section=section,
        message_matcher=matcher,
        message_signer=body.get("message_signer"),
        ticker_interval=ticker,
        preserve_data=body.get("preserve_data", False),
        timer_event_on_shutdown=body.get("timer_event_on_shutdown", False),
        script_type=script_type,
        config=dict(body.get("config", {})),
        ignored=ignored,
    )


# -- sbmgr.toml ----------------------------------------------------------------------------------------

_TLS_KEYS = {
    "server_name",
    "cert_file",
    "key_file",
    "client_auth",
    "ciphers",
    "insecure_skip_verify",
    "prefer_server_ciphers",
    "session_tickets_disabled",
    "sesion_ticket_key",
    "session_ticket_key",
    "min_version",
    "max_version",
    "client_cafile",
    "root_cafile",
}
_SIGNER_KEYS = {"name", "hmac_hash", "hmac_key", "version"}
_TOP_KEYS = {"ip_address", "use_tls", "signer", "tls", "dashboard", "manager"}
_TLS_VERSIONS = {
    "SSL30": ssl.TLSVersion.SSLv3,
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


@dataclass(slots=True)
class SignerConfig:
    """Heka's MessageSigningConfig; the zero value is what heka-sbmgr signs with when [signer] is absent."""

    name: str = ""
    hmac_hash: str = "md5"
    hmac_key: str = ""
    version: int = 0


@dataclass(slots=True)
class SbmgrConfig:
    """Heka's sbmgr.toml, plus ``dashboard`` (URL of the daemon's dashboard, for list/status/waiting)
    and ``manager`` (the manager's name, to know the full name a section will run under)."""

    path: str = "sbmgr.toml"
    ip_address: str = "127.0.0.1:5565"
    use_tls: bool = False
    signer: SignerConfig = field(default_factory=SignerConfig)
    signer_given: bool = False
    tls: dict[str, Any] = field(default_factory=dict)
    dashboard: str | None = None
    manager: str | None = None

    @property
    def url(self) -> str:
        """The endpoint URL for hekacli.transport."""
        return f"{'tls' if self.use_tls else 'tcp'}://{self.ip_address}"


def _lower_keys(table: Mapping[str, Any], allowed: set[str], path: str, where: str) -> dict[str, Any]:
    # Heka's TOML decoder matches keys to struct fields case-insensitively; unknown keys we reject
    # (Heka ignored them) so a typo cannot silently turn TLS or signing off.
    out: dict[str, Any] = {}
    for key, value in table.items():
        low = key.lower()
        if low not in allowed:
            raise ConfigError(f"unknown key in {where}", file=path, field=key)
        out[low] = value
    return out


def load_sbmgr_config(path: str | Path) -> SbmgrConfig:
    """Read an sbmgr.toml (or sbmgrload.toml); errors name the file and the key."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read config: {exc.strerror or exc}", file=str(p)) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", file=str(p)) from None
    top = _lower_keys(doc, _TOP_KEYS, str(p), "the top level")
    cfg = SbmgrConfig(path=str(p))

    def expect(value: Any, kind: type, key: str) -> Any:
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(
                f"expects a {kind.__name__}, got {type(value).__name__}", file=str(p), field=key
            )
        return value

    if "ip_address" in top:
        cfg.ip_address = expect(top["ip_address"], str, "ip_address")
    if "use_tls" in top:
        cfg.use_tls = expect(top["use_tls"], bool, "use_tls")
    if "dashboard" in top:
        cfg.dashboard = expect(top["dashboard"], str, "dashboard")
    if "manager" in top:
        cfg.manager = expect(top["manager"], str, "manager")
    if "signer" in top:
        signer = _lower_keys(expect(top["signer"], dict, "signer"), _SIGNER_KEYS, str(p), "[signer]")
        cfg.signer = SignerConfig(
            name=expect(signer.get("name", ""), str, "signer.name"),
            hmac_hash=expect(signer.get("hmac_hash", "md5"), str, "signer.hmac_hash"),
            hmac_key=expect(signer.get("hmac_key", ""), str, "signer.hmac_key"),
            version=expect(signer.get("version", 0), int, "signer.version"),
        )
        cfg.signer_given = True
    if "tls" in top:
        cfg.tls = _lower_keys(expect(top["tls"], dict, "tls"), _TLS_KEYS, str(p), "[tls]")
        for key in ("min_version", "max_version"):
            if key in cfg.tls and cfg.tls[key] not in _TLS_VERSIONS:
                raise ConfigError(
                    f"invalid TLS version {cfg.tls[key]!r} (one of {', '.join(_TLS_VERSIONS)})",
                    file=str(p),
                    field=f"tls.{key}",
                )
    return cfg


def client_ssl(cfg: SbmgrConfig) -> ssl.SSLContext | None:
    """The TLS client context from ``[tls]`` (None when use_tls is off)."""
    if not cfg.use_tls:
        return None
    from . import transport

    tls = cfg.tls
    cert, key = tls.get("cert_file"), tls.get("key_file")
    try:
        ctx = transport.client_ssl_context(
            ca=tls.get("root_cafile") or None,
            cert=cert if cert and key else None,  # Heka loads the pair only when both are given
            key=key if cert and key else None,
            server_hostname=tls.get("server_name") or None,
            insecure=bool(tls.get("insecure_skip_verify", False)),
        )
    except (OSError, ssl.SSLError) as exc:
        raise NetworkError(f"Error creating TLS config: {exc}", file=cfg.path) from None
    if "min_version" in tls:
        ctx.minimum_version = _TLS_VERSIONS[tls["min_version"]]
    if "max_version" in tls:
        ctx.maximum_version = _TLS_VERSIONS[tls["max_version"]]
    return ctx


def make_signer(cfg: SbmgrConfig):
    """The framing Signer for the config (heka-sbmgr always signs, even with an empty signer)."""
    from .framing import Signer

    s = cfg.signer
    return Signer(s.name, s.version, s.hmac_hash, s.hmac_key.encode("utf-8"))


def frame_control(cfg: SbmgrConfig, msg: Message) -> bytes:
    """The signed, framed bytes of a control message."""
    from .framing import frame

    return frame(msg, make_signer(cfg))


def send_control(cfg: SbmgrConfig, messages: list[Message], timeout: float = 10) -> None:
    """Sign, frame and send control messages on one connection (raises NetworkError)."""
    from . import transport

    data = b"".join(frame_control(cfg, m) for m in messages)
    transport.send_framed(cfg.url, data, ssl=client_ssl(cfg), timeout=timeout)


# -- the dashboard API ---------------------------------------------------------------------------------


class DashboardClient:
    """Reads `heka serve`'s dashboard JSON API (``/api/status``)."""

    def __init__(self, url: str, timeout: float = 5) -> None:
        if "://" not in url:
            url = f"http://{url}"
        self.url = url.rstrip("/")
        self.timeout = timeout

    def get_json(self, path: str) -> Any:
        """GET a JSON document; raises NetworkError on connection/HTTP errors."""
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=self.timeout) as resp:  # noqa: S310
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise NetworkError(f"dashboard {self.url}{path}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NetworkError(f"dashboard {self.url} unreachable: {reason}") from None

    def status(self) -> dict[str, Any]:
        """Everything: ``sandboxes``, ``managers`` (with recent control events), ``terminated``."""
        return self.get_json("/api/status")

    def sandboxes(self) -> list[dict[str, Any]]:
        """The running (and terminated) sandboxes."""
        return self.status().get("sandboxes", [])


@dataclass(slots=True)
class Outcome:
    """What became of one control message."""

    ok: bool
    name: str | None
    state: str
    reason: str = ""


def _find_event(status: Mapping[str, Any], uuid: str) -> dict[str, Any] | None:
    for mgr in status.get("managers", []):
        for event in mgr.get("events", []):
            if event.get("uuid") == uuid:
                return event
    return None


def _find_sandbox(status: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    for sb in status.get("sandboxes", []):
        if sb.get("name") == name:
            return sb
    return None


def wait_for_outcome(client: DashboardClient, uuid: str, timeout: float, poll: float = 0.1) -> Outcome:
    """Poll the dashboard until the manager reports on control message `uuid` (bounded by `timeout`).

    A load succeeds when the sandbox is shown running; it fails when the manager rejected it (reason
    given) or the sandbox shows as terminated (its last error). An unload succeeds when the manager
    removed it. No report within `timeout` means the message never reached the manager: the daemon
    drops unsigned, badly signed and unknown-signer records before any plugin sees them.
    """
    deadline = time.monotonic() + timeout
    last_error: NetworkError | None = None
    while True:
        try:
            status = client.status()
            last_error = None
        except NetworkError as exc:
            status, last_error = None, exc
        if status is not None:
            event = _find_event(status, uuid)
            if event is not None:
                name = event.get("name")
                if event.get("outcome") != "ok":
                    return Outcome(False, name, event.get("outcome", "rejected"), event.get("reason", ""))
                if event.get("action") != "load":
                    return Outcome(True, name, event.get("outcome", "ok"), event.get("reason", ""))
                sb = _find_sandbox(status, name or "")
                if sb is not None and sb.get("state") == "terminated":
                    return Outcome(False, name, "terminated", sb.get("last_error") or "terminated")
                if sb is not None:
                    return Outcome(True, name, sb.get("state") or "running")
        if time.monotonic() >= deadline:
            if last_error is not None:
                raise last_error
            return Outcome(
                False,
                None,
                "timeout",
                f"no outcome within {timeout:g}s: the manager never handled the message "
                "(rejected signer/signature, or a message_signer mismatch; see the daemon's log)",
            )
        time.sleep(poll)


def require_outcome(outcome: Outcome) -> Outcome:
    """Raise SandboxError with the reason unless the outcome is a success."""
    if not outcome.ok:
        label = f"{outcome.name}: " if outcome.name else ""
        raise SandboxError(f"{label}{outcome.state}: {outcome.reason}".rstrip(": "))
    return outcome


# -- local compile (--dry-run) ---------------------------------------------------------------------


@dataclass(slots=True)
class ManagerLimits:
    """The limits a manager forces onto the sandboxes it loads."""

    memory: int = DEFAULT_MEMORY_LIMIT
    instructions: int = DEFAULT_INSTRUCTION_LIMIT
    output: int = DEFAULT_OUTPUT_LIMIT
    source: str = "Heka's defaults"


def limits_from_dashboard(client: DashboardClient, manager: str | None) -> ManagerLimits | None:
    """The limits of the named manager (or the only one) as the dashboard reports them."""
    managers = client.status().get("managers", [])
    if manager is not None:
        managers = [m for m in managers if m.get("name") == manager]
    if len(managers) != 1 or not isinstance(managers[0].get("limits"), dict):
        return None
    lim = managers[0]["limits"]
    return ManagerLimits(int(lim.get("memory", DEFAULT_MEMORY_LIMIT)),
                         int(lim.get("instructions", DEFAULT_INSTRUCTION_LIMIT)),
                         int(lim.get("output", DEFAULT_OUTPUT_LIMIT)), f"manager {managers[0].get('name')}")


def dry_run_compile(script_text: str, spec: FilterSpec, limits: ManagerLimits, module_dir: str | None = None,
                    filename: str | None = None) -> dict[str, Any]:
    """Load the script in a local SandboxFilter with the manager's limits; raise SandboxError if it fails.

    Returns the sandbox's stats after loading (memory used by the top level, ...).
    """
    from .sandbox.host import Limits, SandboxFilter

    sandbox = SandboxFilter(spec.section, script_text, config=spec.config, module_dir=module_dir,
                            limits=Limits(memory=limits.memory, instructions=limits.instructions,
                                          output=limits.output),
                            preserve_path=None, on_inject=lambda _msg: None, filename=filename)
    sandbox.load()
    try:
        return dict(sandbox.stats())
    finally:
        try:
            sandbox.stop()
        except Exception:  # noqa: BLE001, S110 - the load result is what matters
            pass


# -- heka-sbmgrload's counter sandbox -------------------------------------------------------------------

COUNTER_LUA = """\
-- heka sbmgrload's counter sandbox: counts messages, reports the rate every tick and a
-- min/max/mean summary every 10 ticks (after Heka's heka-sbmgrload).
require "string"

count = 0
last_count = 0
last_ns = 0
samples = 0
rate_sum = 0
rate_min = 0
rate_max = 0

function process_message()
    count = count + 1
    return 0
end

function timer_event(ns)
    local rate = 0
    if last_ns > 0 and ns > last_ns then
        rate = (count - last_count) / ((ns - last_ns) / 1e9)
    end
    last_ns = ns
    last_count = count
    inject_payload("txt", "rate", string.format("Got %d messages. %0.2f msg/sec", count, rate))
    samples = samples + 1
    rate_sum = rate_sum + rate
    if samples == 1 or rate < rate_min then rate_min = rate end
    if samples == 1 or rate > rate_max then rate_max = rate end
    if samples % 10 == 0 then
        inject_payload("txt", "summary",
            string.format("Samples: %d min: %0.2f max: %0.2f mean: %0.2f msg/sec",
                samples, rate_min, rate_max, rate_sum / samples))
    end
end
"""


def counter_section(index: int) -> str:
    """The name of heka-sbmgrload's i-th sandbox."""
    return f"CounterSandbox{index}"


def counter_config(index: int) -> str:
    """The TOML heka-sbmgrload sends with the i-th counter sandbox."""
    return (f"[{counter_section(index)}]\n"
            'type = "SandboxFilter"\n'
            "message_matcher = \"Type == 'hekabench'\"\n"
            "ticker_interval = 1\n"
            'filename = ""\n'
            "preserve_data = true\n")
