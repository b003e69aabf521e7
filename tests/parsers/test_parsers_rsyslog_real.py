"""A real rsyslogd writes files with built-in and custom templates; `--rsyslog-conf` decodes them back.

rsyslogd runs in the foreground with its own config, work directory, pid file, unix socket and UDP
port (imuxsock with the system socket off, so /dev/log is untouched). Messages are sent with
`logger` over the unix socket and over UDP, in RFC 3164 and RFC 5424, for every facility a process
may use (kern is reserved for the kernel: logger sends it as user) and every severity.
"""

from __future__ import annotations

import socket
import subprocess
import time
from datetime import UTC, datetime

import pytest
from conftest import free_port, run_heka
from hekacli.parsers import build_decoder

from .conftest import assert_paths_agree, running, wait_for

RSYSLOGD = "/usr/sbin/rsyslogd"

CONF = r"""
global(workDirectory="{d}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{d}/log.sock" CreatePath="on" UseSpecialParser="off" ParseHostname="on")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{port}")
$template fwdnl,"<%PRI%>%TIMESTAMP% %HOSTNAME% %syslogtag:1:32%%msg:::sp-if-no-1st-sp%%msg%\n"
$template legacy,"{legacy}"
template(name="modern" type="string"
         string="%pri-text%|%TIMESTAMP:::date-pgsql%|%HOSTNAME%|%programname%|%syslogseverity%|%msg%\n")
*.* action(type="omfile" file="{d}/traditional.log" template="RSYSLOG_TraditionalFileFormat")
*.* action(type="omfile" file="{d}/fileformat.log" template="RSYSLOG_FileFormat")
*.* action(type="omfile" file="{d}/protocol23.log" template="RSYSLOG_SyslogProtocol23Format")
*.* action(type="omfile" file="{d}/forward.log" template="fwdnl")
*.* {d}/legacy.log;legacy
*.* action(type="omfile" file="{d}/modern.log" template="modern")
"""

# every facility util-linux logger can send (it has no name for ntp/audit/alert/clock)
LEGACY = (
    "%TIMESTAMP:::date-rfc3339% %HOSTNAME% %syslogfacility-text%.%syslogseverity-text% "
    "%syslogtag%%msg:::sp-if-no-1st-sp%%msg:::drop-last-lf%\\n"
)
FACILITIES = [
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    *(f"local{i}" for i in range(8)),
]
FAC_NUM = {
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    **{f"local{i}": 16 + i for i in range(8)},
}
SEVERITIES = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]
FILES = ["traditional", "fileformat", "protocol23", "forward", "legacy", "modern"]


def _messages():
    out = []
    for i, fac in enumerate(FACILITIES):
        sev = i % 8
        out.append(
            {
                "i": i,
                "fac": fac,
                "sev": sev,
                "tag": f"app{i}",
                "pid": 1000 + i,
                "via": "unix" if i % 2 == 0 else "udp",
                "rfc": "rfc3164" if i % 4 < 2 else "rfc5424",
                "text": f'message {i} "{fac}.{SEVERITIES[sev]}" with \\ and = signs',
            }
        )
    return out


MESSAGES = _messages()


@pytest.fixture(scope="module")
def rsyslog_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("rsyslog")
    port = free_port(socket.SOCK_DGRAM)
    conf = d / "rsyslog.conf"
    conf.write_text(CONF.format(d=d, port=port, legacy=LEGACY))
    sock = d / "log.sock"
    with running([RSYSLOGD, "-n", "-f", str(conf), "-i", str(d / "rsyslogd.pid")], ready=sock.exists):
        # UDP has no handshake: probe until rsyslog writes what we send
        def probe() -> bool:
            subprocess.run(
                ["logger", "-n", "127.0.0.1", "-P", str(port), "-d", "-t", "probe", "ready"], check=True
            )
            return (d / "traditional.log").exists() and "probe" in (d / "traditional.log").read_text()

        assert wait_for(probe, timeout=10, interval=0.2)
        start = time.time_ns()
        for m in MESSAGES:
            argv = [
                "logger",
                f"--{m['rfc']}",
                "-t",
                m["tag"],
                f"--id={m['pid']}",
                "-p",
                f"{m['fac']}.{SEVERITIES[m['sev']]}",
            ]
            if m["via"] == "unix":
                argv += ["--socket", str(sock)]
            else:
                argv += ["-n", "127.0.0.1", "-P", str(port), "-d"]
            if m["rfc"] == "rfc5424" and m["i"] % 3 == 0:
                argv += ["--msgid", f"ID{m['i']}", "--sd-id", "test@32473", "--sd-param", f'seq="{m["i"]}"']
            subprocess.run([*argv, m["text"]], check=True, timeout=10)
        end = time.time_ns()

        def complete() -> bool:
            return all(
                (d / f"{f}.log").exists()
                and sum("message " in x for x in (d / f"{f}.log").read_text().splitlines()) == len(MESSAGES)
                for f in FILES
            )

        assert wait_for(complete, timeout=10)
    return {"dir": d, "conf": conf, "start": start, "end": end}


def _records(files, name, kind="rsyslog"):
    path = files["dir"] / f"{name}.log"
    if kind == "rsyslog":
        d = build_decoder("rsyslog", rsyslog_conf=str(files["conf"]), log_file=str(path))
    else:
        d = build_decoder(kind)
    lines = path.read_text().splitlines()
    recs = assert_paths_agree(d, lines)
    assert len(recs) == len(lines), "every line decodes"
    mine = [r for r in recs if "message " in r.get("Payload", "")]
    # unix-socket and UDP inputs run in different threads: file order may differ from send order
    return sorted(mine, key=lambda r: int(r["Payload"].split()[1]))


def _check_common(files, recs, *, facility: bool, severity: bool, pid: bool = True, tag_key="programname"):
    host = socket.gethostname().split(".")[0]
    assert len(recs) == len(MESSAGES)
    for rec, m in zip(recs, MESSAGES, strict=True):
        assert rec["Hostname"] == host
        assert rec[tag_key] == m["tag"]
        if pid:
            assert rec["Pid"] == m["pid"]
        assert rec["Payload"].strip() == m["text"]
        slack = 2_000_000_000
        assert files["start"] - slack <= rec["Timestamp"] <= files["end"] + slack
        if facility:
            assert rec["syslogfacility"] == FAC_NUM[m["fac"]]
        if severity:
            assert rec["Severity"] == m["sev"]


def test_traditional_file_format(rsyslog_files):
    recs = _records(rsyslog_files, "traditional")
    _check_common(rsyslog_files, recs, facility=False, severity=False)


def test_file_format(rsyslog_files):
    recs = _records(rsyslog_files, "fileformat")
    _check_common(rsyslog_files, recs, facility=False, severity=False)
    assert any(r["Timestamp"] % 1_000_000_000 for r in recs)  # RFC 3339 with microseconds


def test_protocol23_format(rsyslog_files):
    recs = _records(rsyslog_files, "protocol23")
    _check_common(rsyslog_files, recs, facility=True, severity=True, pid=False, tag_key="app-name")
    for rec, m in zip(recs, MESSAGES, strict=True):
        assert rec["app-name"] == m["tag"]
        assert rec["procid"] == str(m["pid"])
        if m["rfc"] == "rfc5424" and m["i"] % 3 == 0:
            assert rec["msgid"] == f"ID{m['i']}"
            assert f'[test@32473 seq="{m["i"]}"]' in rec["structured-data"]


def test_custom_legacy_template(rsyslog_files):
    recs = _records(rsyslog_files, "forward")
    _check_common(rsyslog_files, recs, facility=True, severity=True)
    recs = _records(rsyslog_files, "legacy")
    _check_common(rsyslog_files, recs, facility=True, severity=True)


def test_custom_modern_template(rsyslog_files):
    recs = _records(rsyslog_files, "modern")
    _check_common(rsyslog_files, recs, facility=True, severity=True, pid=False)


@pytest.mark.parametrize("name", ["traditional", "fileformat", "protocol23"])
def test_syslog_decoder_without_template(rsyslog_files, name):
    recs = _records(rsyslog_files, name, kind="syslog")
    _check_common(rsyslog_files, recs, facility=name == "protocol23", severity=name == "protocol23")


def test_cli_with_rsyslog_conf(rsyslog_files):
    path = rsyslog_files["dir"] / "legacy.log"
    r = run_heka(
        "decode",
        "rsyslog",
        "--rsyslog-conf",
        str(rsyslog_files["conf"]),
        str(path),
        "-f",
        "jsonl",
        "--where",
        "Severity <= 3",
    )
    assert r.returncode == 0, r.stderr.decode()
    import json

    got = [json.loads(x) for x in r.stdout.decode().splitlines()]
    want = [m for m in MESSAGES if m["sev"] <= 3]
    assert sorted(g["Payload"].strip() for g in got if "message " in g["Payload"]) == sorted(
        m["text"] for m in want
    )
    assert all(datetime.fromisoformat(g["Timestamp"].replace("Z", "+00:00")).tzinfo == UTC for g in got)
