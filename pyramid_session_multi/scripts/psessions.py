"""``psessions CONFIG_URI``: list the namespaces an application registers."""

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from pyramid.paster import bootstrap, setup_logging

from ..config import get_manager_config
from ..describe import describe_namespaces

COLUMNS = (
    "namespace",
    "cookie_name",
    "factory",
    "discriminator",
    "validator",
    "secure",
    "httponly",
    "samesite",
    "max_age",
    "path",
    "domain",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="psessions",
        description="Print the session_multi namespaces of a Pyramid "
        "application: cookie name, factory, discriminator, validator and "
        "the cookie attributes that can be discovered.",
    )
    parser.add_argument("config_uri", help="the PasteDeploy ini, e.g. development.ini")
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="output format (default: table)",
    )
    return parser


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def format_table(rows: list[dict[str, Any]]) -> str:
    """Return ``rows`` as an aligned text table, like ``proutes`` prints."""
    cells = [[_cell(row[column]) for column in COLUMNS] for row in rows]
    header = [column.replace("_", " ").title() for column in COLUMNS]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(COLUMNS))]
    lines = [header, ["-" * width for width in widths], *cells]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip()
        for line in lines
    )


def main(
    argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Run psessions; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        setup_logging(args.config_uri)
        env = bootstrap(args.config_uri)
    except Exception as exc:
        print(f"psessions: cannot load {args.config_uri!r}: {exc}", file=err)
        return 2
    try:
        config = get_manager_config(env["registry"])
        if config is None:
            print(
                "psessions: this application does not include "
                'pyramid_session_multi; add config.include("pyramid_session_multi").',
                file=err,
            )
            return 1
        rows = describe_namespaces(config)
    finally:
        env["closer"]()
    if args.format == "json":
        print(json.dumps(rows, indent=2, default=str), file=out)
    elif rows:
        print(format_table(rows), file=out)
    else:
        print("No session_multi namespaces are registered.", file=out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
