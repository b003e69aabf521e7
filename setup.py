"""Build the optional C line scanner (`hekacli.parsers._linescan`); everything else is in pyproject.toml.

`optional=True`: without a C compiler the package still installs, and the bulk decoder uses its
pure-polars path (same results, slower; `heka decode --explain` does not depend on it).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "hekacli.parsers._linescan",
            sources=["parsers/_linescan.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
