"""Command-line modules: one thin Typer module per `heka` subcommand."""
