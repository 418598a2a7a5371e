"""``psessions CONFIG_URI [name=value ...]``: list the namespaces an application registers.

``psessions --check CONFIG_URI`` audits them instead (see :mod:`..checks`);
``psessions CONFIG_URI --revoke USERID`` signs a user out everywhere (see
:doc:`/narr/lifetimes`); ``psessions CONFIG_URI sweep`` (or ``--sweep``)
deletes what expired in the stores that do not expire it themselves (see
:mod:`.sweep`).
As with ``proutes`` and ``pviews``, ``name=value`` pairs after the config
URI fill the ini file's ``%(name)s`` variables.
"""

import argparse
import datetime
import json
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, TextIO

from pyramid.paster import bootstrap, setup_logging
from pyramid.scripts.common import parse_vars

from ..checks import LEVELS, SILENCE_SETTING, Finding, at_or_above, run_checks
from ..config import get_manager_config
from ..describe import describe_namespaces
from .devices import end_device, list_devices

#: Every column, in the order the table and the JSON give them, with its header.
HEADERS = {
    "namespace": "Namespace",
    "cookie_name": "Cookie Name",
    "library": "Library",
    "topology": "Topology",
    "bound_to": "Bound To",
    "fallbacks": "Fallbacks",
    "factory": "Factory",
    "discriminator": "Discriminator",
    "validator": "Validator",
    "idle_timeout": "Idle Timeout",
    "absolute_timeout": "Absolute Timeout",
    "steps": "Steps",
    "concurrent_writes": "Writes",
    "secure": "Secure",
    "httponly": "HttpOnly",
    "samesite": "SameSite",
    "max_age": "Max-Age",
    "path": "Path",
    "domain": "Domain",
}

#: Every column ``--columns`` can name.
COLUMNS = tuple(HEADERS)

#: The table's columns unless ``--columns`` names others: short values only,
#: so that the table fits 120 columns of a terminal.
DEFAULT_COLUMNS = (
    "namespace",
    "cookie_name",
    "library",
    "bound_to",
    "idle_timeout",
    "absolute_timeout",
    "concurrent_writes",
    "secure",
    "httponly",
    "samesite",
)

#: The exit status of a listing cut short by a closed pipe, as for a command
#: that SIGPIPE ended.
CLOSED_PIPE = 141


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="psessions",
        description="Print the session_multi namespaces of a Pyramid "
        "application: cookie name, library, timeouts and the cookie attributes "
        "that can be discovered. --check audits them for deployment instead; "
        "--revoke USERID signs a user out everywhere, and takes no other option; "
        "sweep (or --sweep) deletes expired sessions, their lock files and expired "
        "revocation records from the stores that keep them for ever, for cron.",
        epilog="Exit status: 0 done; 1 --check found something at --fail-level, the "
        "application does not include pyramid_session_multi, or --revoke or sweep "
        "failed (its ini or a store included); 2 a wrong command line, or an ini that "
        "cannot be loaded.",
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
        default=None,
        help="output format of the listing or of --check (default: table)",
    )
    parser.add_argument(
        "--columns",
        metavar="NAME,NAME",
        default=None,
        help="the columns of the listing, separated by commas, or 'all'. Columns: "
        + ", ".join(COLUMNS)
        + ". Default for the table: "
        + ",".join(DEFAULT_COLUMNS)
        + "; for JSON: all",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="audit every namespace for deployment instead of listing them",
    )
    parser.add_argument(
        "--fail-level",
        choices=LEVELS,
        default=None,
        help="with --check: the lowest level that makes the exit status 1 (default: warning)",
    )
    parser.add_argument(
        "--revoke",
        metavar="USERID",
        help="end every session recorded for USERID, on every device, in the "
        "application's revocation store (exit status 0 once recorded, 1 if not)",
    )
    parser.add_argument(
        "--devices",
        metavar="USERID",
        help="list USERID's live devices (one login on one client each) from the "
        "application's revocation store",
    )
    parser.add_argument(
        "--end-device",
        metavar="DEVICE_ID",
        help="end the device DEVICE_ID (an id --devices lists) in every namespace, at "
        "its next request (exit status 0 once recorded, 1 if not)",
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="delete expired sessions, their lock files and expired revocation records "
        "(Beaker file, dbm and ext:database; the revocation store) and count them; "
        "'sweep' after the ini does the same",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="with sweep: count what would be deleted, delete nothing",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with sweep: how old a lock file whose session is gone must be to go (default: 300)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print the whole traceback when the application cannot be loaded",
    )
    return parser


def _refused(args: argparse.Namespace) -> str | None:
    """Why the options given cannot go together, or ``None`` when they can."""
    actions = [
        option
        for option, value in (
            ("--revoke", args.revoke is not None),
            ("--devices", args.devices is not None),
            ("--end-device", args.end_device is not None),
            ("--check", args.check),
            ("sweep", args.sweep),
        )
        if value
    ]
    if len(actions) > 1 and ("--devices" in actions or "--end-device" in actions):
        return f"{' and '.join(actions)} are separate actions; run one at a time."
    if (args.devices is not None or args.end_device is not None) and args.columns:
        return "--columns chooses the columns of the namespaces' listing; leave it out."
    if args.end_device is not None and (args.format or args.fail_level):
        return "--end-device changes state and takes no listing option; run it on its own."
    if not args.sweep and (args.dry_run or args.grace is not None):
        return "--dry-run and --grace are options of sweep; add sweep or leave them out."
    if args.sweep:
        given = [
            option
            for option, value in (
                ("--revoke", args.revoke is not None),
                ("--check", args.check),
                ("--format", args.format),
                ("--columns", args.columns),
                ("--fail-level", args.fail_level),
            )
            if value
        ]
        if given:
            return (
                f"sweep changes state and takes no other action, listing or audit option: "
                f"{', '.join(given)} would do nothing; run it on its own."
            )
        if args.grace is not None and not args.grace >= 0:
            return f"--grace {args.grace}: a number of seconds, 0 or more."
    if args.revoke is not None:
        listing = [
            option
            for option, value in (
                ("--check", args.check),
                ("--format", args.format),
                ("--columns", args.columns),
                ("--fail-level", args.fail_level),
            )
            if value
        ]
        if listing:
            return (
                f"--revoke changes state and takes no listing or audit option: "
                f"{', '.join(listing)} would do nothing; run it on its own."
            )
    elif args.check:
        if args.columns is not None:
            return "--columns chooses the columns of the listing; --check lists findings."
    elif args.fail_level is not None:
        return "--fail-level sets the exit status of --check; add --check or leave it out."
    return None


def _columns(chosen: str | None, output: str) -> tuple[str, ...] | str:
    """The columns ``--columns`` names, or an error message."""
    if chosen is None:
        return DEFAULT_COLUMNS if output == "table" else COLUMNS
    if chosen.strip() == "all":
        return COLUMNS
    names = [name.strip() for name in chosen.split(",") if name.strip()]
    unknown = [name for name in names if name not in HEADERS]
    if unknown or not names:
        return (
            f"--columns {chosen!r}: {', '.join(unknown) or 'no column'} is not a column; "
            f"the columns are {', '.join(COLUMNS)}, or 'all'."
        )
    return tuple(dict.fromkeys(names))


def printable(text: str) -> str:
    """``text`` with every character that is not printable escaped.

    Values come from an application's configuration and may hold anything: a
    newline, a terminal escape sequence, a right-to-left override.  Shown as
    ``\\n``, ``\\x1b`` or ``\\u202e``, they cannot break a table's lines or
    drive the terminal.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    code = ord(char)
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _fallback_cell(fallback: Any) -> str:
    if isinstance(fallback, dict):
        return f"{fallback.get('cookie_name')} ({fallback.get('library')})"
    return str(fallback)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return printable("; ".join(_fallback_cell(item) for item in value)) or "-"
    return "-" if value is None else printable(str(value))


def format_table(rows: list[dict[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    """Return ``rows`` as an aligned text table, like ``proutes`` prints.

    Every cell is made printable (see :func:`printable`): one row, one line.
    """
    cells = [[_cell(row[column]) for column in columns] for row in rows]
    header = [HEADERS[column] for column in columns]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(columns))]
    lines = [header, ["-" * width for width in widths], *cells]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip()
        for line in lines
    )


def _load_error(config_uri: str, exc: Exception, verbose: bool) -> str:
    message = printable(f"psessions: cannot load {config_uri!r}: {type(exc).__name__}: {exc}")
    if verbose:
        trace = "".join(traceback.format_exception(exc)).rstrip()
        return f"{trace}\n{message}"
    return f"{message}\n(run psessions -v ... for the traceback)"


def main(
    argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Run psessions; return the exit status."""
    parser = _parser()
    args = parser.parse_intermixed_args(argv)
    if "sweep" in args.config_vars:  # psessions CONFIG sweep
        args.config_vars = [var for var in args.config_vars if var != "sweep"]
        args.sweep = True
    refused = _refused(args)
    if refused is not None:
        parser.print_usage(err)
        print(f"psessions: {refused}", file=err)
        return 2
    output = args.format or "table"
    columns = _columns(args.columns, output)
    if isinstance(columns, str):
        parser.print_usage(err)
        print(f"psessions: {columns}", file=err)
        return 2
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
        print(_load_error(args.config_uri, exc, args.verbose), file=err)
        # revoking or sweeping is an action that could not be done: the documented 1
        acting = args.revoke is not None or args.end_device is not None
        return 1 if acting or args.sweep else 2
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
            return _revoke(config, env["registry"].settings, args.revoke, out, err)
        if args.devices is not None:
            return list_devices(config, args.devices, output, out, err, printable)
        if args.end_device is not None:
            return end_device(config, args.end_device, out, err, printable)
        if args.sweep:
            return _sweep(config, args, out, err)
        if args.check:
            findings = run_checks(config, env["registry"].settings)
        else:
            rows = describe_namespaces(config)
    finally:
        env["closer"]()
    try:
        if args.check:
            return _report(findings, output, args.fail_level or "warning", out)
        if output == "json":
            chosen = [{column: row[column] for column in columns} for row in rows]
            print(json.dumps(chosen, indent=2, default=str), file=out)
        elif rows:
            print(format_table(rows, columns), file=out)
        else:
            print("No session_multi namespaces are registered.", file=out)
        out.flush()
    except BrokenPipeError:
        # `psessions app.ini | head`: the reader has what it wanted
        _silence_closed_pipe(out)
        return CLOSED_PIPE
    return 0


def _silence_closed_pipe(out: TextIO) -> None:
    """Point ``out`` at /dev/null, so that flushing it at exit raises nothing."""
    try:
        fileno = out.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fileno)
    finally:
        os.close(devnull)


def _revoke(config: Any, settings: Any, userid: str, out: TextIO, err: TextIO) -> int:
    from ..lifecycle.revoking import log_revocation
    from ..revocation import MemoryRevocationStore, describe_store, revoke_user

    if not userid.strip():
        print("psessions: --revoke needs a userid, not an empty one.", file=err)
        return 2
    if isinstance(config.revocations, MemoryRevocationStore):
        print(
            f"psessions: {userid!r} was not revoked: the application keeps revocations in "
            "memory, in each of its processes, and this one ends now; set "
            "session_multi.revocations to a Redis or SQLAlchemy URL every process shares.",
            file=err,
        )
        return 1
    try:
        at = revoke_user(config, userid)
    except Exception as exc:
        print(
            printable(f"psessions: {userid!r} was not revoked: {type(exc).__name__}: {exc}"),
            file=err,
        )
        return 1
    log_revocation(settings, userid)
    when = datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat(timespec="milliseconds")
    print(
        f"Revoked every session of user {userid!r} recorded before {when} "
        f"(store: {describe_store(config.revocations)}).",
        file=out,
    )
    return 0


def _sweep(config: Any, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .sweep import DEFAULT_GRACE, sweep

    grace = DEFAULT_GRACE if args.grace is None else args.grace
    report = sweep(config, grace=grace, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    failed = False
    for swept in report:
        where = printable(f"{swept.what} ({swept.store})")
        if swept.error is not None:
            failed = True
            print(printable(f"{where}: not swept: {swept.error}"), file=err)
        elif swept.note is not None:
            print(f"{where}: {printable(swept.note)}", file=out)
        else:
            removed = ", ".join(
                (
                    _count(swept.sessions, "session"),
                    _count(swept.lock_files, "lock file"),
                    _count(swept.records, "revocation record"),
                )
            )
            left = f"; kept {_count(swept.kept, 'session')}" if swept.kept else ""
            if swept.unreadable:
                left += f"; {swept.unreadable} unreadable, left alone"
            print(f"{where}: {verb} {removed}{left}", file=out)
    return 1 if failed else 0


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _report(findings: list[Finding], output: str, fail_level: str, out: TextIO) -> int:
    if output == "json":
        print(json.dumps([finding.as_dict() for finding in findings], indent=2), file=out)
    elif findings:
        for finding in findings:
            print(
                printable(f"{finding.id} {finding.level:7} {finding.namespace}: {finding.message}"),
                file=out,
            )
            print(f"    fix: {printable(finding.hint)}", file=out)
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
