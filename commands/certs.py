"""`heka certs DIR`: make a throw-away CA, server and client certificate for trying TLS locally."""

from __future__ import annotations

from pathlib import Path

import typer


def certs(
    directory: Path = typer.Argument(..., help="Directory to write the PEM files into (created if missing)."),
    host: list[str] = typer.Option([], "--host",
                                   help="Names/IPs the server certificate is valid for (repeatable; default "
                                        "127.0.0.1, ::1, localhost)."),
    days: int = typer.Option(365, "--days", min=1, help="Validity in days."),
) -> None:
    """Write ca.pem, ca-key.pem, server.pem, server-key.pem, client.pem, client-key.pem (keys mode 0600).

    Not for production: the CA key sits next to the certificates.
    """
    from hekacli.certs import make_pki

    pki = make_pki(directory, days=days, hosts=tuple(host) or ("127.0.0.1", "::1", "localhost"))
    for p in pki.files():
        typer.echo(str(p))


def register(app: typer.Typer) -> None:
    """Add `heka certs` to the app."""
    app.command("certs")(certs)
