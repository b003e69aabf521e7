"""`python -m hekacli.commands` runs the `heka` CLI."""

from .main import main

main()
