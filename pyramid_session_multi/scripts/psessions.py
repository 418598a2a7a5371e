"""``psessions CONFIG_URI [name=value ...]``: list the namespaces an application registers.

``psessions --check CONFIG_URI`` audits them instead (see :mod:`..checks`);
``psessions CONFIG_URI --revoke USERID`` signs a user out everywhere (see
:doc:`/narr/lifetimes`).
As with ``proutes`` and ``pviews``, ``name=value`` pairs after the config
URI fill the ini file's ``%(name)s`` variables.
"""

import argparse
import datetime
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from pyramid.paster import bootstrap, setup_logging
from pyramid.scripts.common import parse_vars

from ..checks import LEVELS, SILENCE_SETTING, Finding, at_or_above, run_checks
from ..config import get_manager_config
from ..describe import describe_namespaces

COLUMNS = (
    "namespace",
    "cookie_name",
    "library",
    "topology",
    "bound_to",
    "fallbacks",
    "factory",
    "discriminator",
    "validator",
    "idle_timeout",
    "absolute_timeout",
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
        "config_vars",
        nargs="*",
        default=(),
        metavar="name=value",
        help="variables the ini file uses: http_port=8080 fills %%(http_port)s",
    )
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="output format (default: table)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="audit every namespace for deployment instead of listing them",
    )
    parser.add_argument(
        "--fail-level",
        choices=LEVELS,
        default="warning",
        help="with --check: the lowest level that makes the exit status 1 (default: warning)",
    )
    parser.add_argument(
        "--revoke",
        metavar="USERID",
        help="end every session recorded for USERID, on every device, in the "
        "application's revocation store (exit status 0 once recorded)",
    )
    return parser


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(str(item) for item in value) or "-"
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
    args = _parser().parse_intermixed_args(argv)
    try:
        config_vars = parse_vars(args.config_vars)
    except ValueError:
        bad = next(var for var in args.config_vars if "=" not in var)
        print(f"psessions: {bad!r} is not a name=value variable for the ini file.", file=err)
        return 2
    config_vars.setdefault("__script__", "psessions")
    try:
        setup_logging(args.config_uri, global_conf=config_vars)
        env = bootstrap(args.config_uri, options=config_vars)
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
        if args.revoke is not None:
            return _revoke(config, args.revoke, out, err)
        if args.check:
            findings = run_checks(config, env["registry"].settings)
        else:
            rows = describe_namespaces(config)
    finally:
        env["closer"]()
    if args.check:
        return _report(findings, args.format, args.fail_level, out)
    if args.format == "json":
        print(json.dumps(rows, indent=2, default=str), file=out)
    elif rows:
        print(format_table(rows), file=out)
    else:
        print("No session_multi namespaces are registered.", file=out)
    return 0


def _revoke(config: Any, userid: str, out: TextIO, err: TextIO) -> int:
    from ..revocation import describe_store, revoke_user

    if not userid.strip():
        print("psessions: --revoke needs a userid, not an empty one.", file=err)
        return 2
    try:
        at = revoke_user(config, userid)
    except Exception as exc:
        print(f"psessions: {userid!r} was not revoked: {exc}", file=err)
        return 1
    when = datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat(timespec="milliseconds")
    print(
        f"Revoked every session of user {userid!r} recorded before {when} "
        f"(store: {describe_store(config.revocations)}).",
        file=out,
    )
    return 0


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _report(findings: list[Finding], output: str, fail_level: str, out: TextIO) -> int:
    if output == "json":
        print(json.dumps([finding.as_dict() for finding in findings], indent=2), file=out)
    elif findings:
        for finding in findings:
            print(
                f"{finding.id} {finding.level:7} {finding.namespace}: {finding.message}", file=out
            )
            print(f"    fix: {finding.hint}", file=out)
        counts = {level: sum(f.level == level for f in findings) for level in LEVELS}
        print(
            f"{_count(len(findings), 'finding')}: {_count(counts['error'], 'error')}, "
            f"{_count(counts['warning'], 'warning')}, {counts['info']} info "
            f"(silence ids with {SILENCE_SETTING}).",
            file=out,
        )
    else:
        print("No findings.", file=out)
    return 1 if at_or_above(findings, fail_level) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
