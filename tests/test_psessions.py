"""psessions CONFIG_URI: the table, the JSON, and the errors."""

import io
import json
import os
import subprocess
import sys

import pytest

from pyramid_session_multi.scripts.psessions import main
from tests.support.http_client import ROOT


def write_ini(tmp_path, factory):
    ini = tmp_path / "app.ini"
    ini.write_text(f"[app:main]\nuse = call:tests.support.psessions_apps:{factory}\n")
    return str(ini)


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    status = main(argv, out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def test_the_default_table_shows_the_short_columns_under_proper_headers(tmp_path):
    status, out, err = run([write_ini(tmp_path, "with_namespaces")])
    assert status == 0, err
    lines = out.splitlines()
    header = lines[0]
    for name in ("Namespace", "Cookie Name", "Library", "Bound To", "Idle Timeout"):
        assert name in header
    assert "HttpOnly" in header and "SameSite" in header
    assert "Httponly" not in header and "Samesite" not in header
    assert "Factory" not in header and "Validator" not in header  # selectable, not default
    prefs = next(line for line in lines if line.startswith("prefs"))
    assert prefs.split()[:4] == ["prefs", "prefs", "pyramid", "cookie"]
    assert "Lax" in prefs
    account = next(line for line in lines if line.startswith("account"))
    assert account.split()[:3] == ["account", "account", "redis"]


def test_every_column_can_be_chosen(tmp_path):
    ini = write_ini(tmp_path, "with_namespaces")
    status, out, err = run([ini, "--columns", "namespace,validator,discriminator,max_age"])
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["Namespace", "Validator", "Discriminator", "Max-Age"]
    account = next(line for line in lines if line.startswith("account"))
    assert account.split() == [
        "account",
        "tests.support.dotted.always_valid",
        "tests.support.dotted.only_https",
        "-",
    ]
    prefs = next(line for line in lines if line.startswith("prefs"))
    assert prefs.split() == ["prefs", "-", "-", "3600"]
    status, out, err = run([ini, "--columns", "all"])
    assert status == 0, err
    assert "pyramid.session.BaseCookieSessionFactory.<locals>.CookieSession" in out
    assert out.splitlines()[0].split()[-1] == "Domain"


def test_an_unknown_column_is_refused_naming_the_columns(tmp_path):
    status, out, err = run([write_ini(tmp_path, "with_namespaces"), "--columns", "name,secure"])
    assert status == 2 and out == ""
    assert "name is not a column" in err and "cookie_name" in err


def test_the_default_table_fits_120_columns(tmp_path):
    from tests.support.demo import INI

    for ini in (write_ini(tmp_path, "with_namespaces"), INI):
        status, out, err = run([ini])
        assert status == 0, err
        assert max(len(line) for line in out.splitlines()) <= 120, out


def test_help_lists_every_column_and_the_exit_statuses(capsys):
    from pyramid_session_multi.scripts.psessions import COLUMNS

    with pytest.raises(SystemExit) as exit:
        main(["--help"])
    assert exit.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for column in COLUMNS:
        assert column in text, column
    assert "Exit status" in text


def test_json(tmp_path):
    status, out, err = run([write_ini(tmp_path, "with_namespaces"), "--format", "json"])
    assert status == 0, err
    rows = {row["namespace"]: row for row in json.loads(out)}
    assert rows["prefs"]["cookie_name"] == "prefs"
    assert rows["prefs"]["httponly"] is True
    assert rows["prefs"]["samesite"] == "Lax"
    assert rows["prefs"]["discriminator"] is None
    assert rows["account"]["secure"] is True
    assert rows["account"]["discriminator"] == "tests.support.dotted.only_https"
    assert rows["account"]["validator"] == "tests.support.dotted.always_valid"


def test_nothing_registered(tmp_path):
    status, out, _err = run([write_ini(tmp_path, "included_only")])
    assert status == 0
    assert "No session_multi namespaces" in out


def test_not_included(tmp_path):
    status, _out, err = run([write_ini(tmp_path, "not_included")])
    assert status == 1
    assert 'config.include("pyramid_session_multi")' in err


@pytest.mark.parametrize(
    "content", [None, "[app:main]\nuse = call:tests.nowhere:main\n", "not an ini"]
)
def test_bad_ini(tmp_path, content):
    ini = tmp_path / "bad.ini"
    if content is not None:
        ini.write_text(content)
    status, _out, err = run([str(ini)])
    assert status == 2
    assert err.startswith(f"psessions: cannot load '{ini}'")
    assert "Traceback" not in err and "psessions -v" in err


def test_console_script_is_installed(tmp_path):
    script = sys.executable.rsplit("/", 1)[0] + "/psessions"
    # the ini names apps in tests.support: the script must be able to import them
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [script, write_ini(tmp_path, "with_namespaces"), "--format", "json"],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert {row["namespace"] for row in json.loads(result.stdout)} == {"prefs", "account"}


def test_namespaces_declared_in_the_ini_are_listed(tmp_path):
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\n"
        "use = call:tests.support.psessions_apps:included_only\n"
        "session_multi.namespaces = prefs\n"
        "session_multi.prefs.factory = signed\n"
        "session_multi.prefs.secret = from-the-ini-secret-of-32-bytes!\n"
        "session_multi.prefs.cookie_name = ini_prefs\n"
        "session_multi.prefs.secure = true\n"
    )
    status, out, err = run([str(ini), "--format", "json"])
    assert status == 0, err
    (row,) = json.loads(out)
    assert (row["namespace"], row["cookie_name"], row["secure"]) == ("prefs", "ini_prefs", True)


def test_a_settings_mistake_exits_2_naming_the_key(tmp_path):
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\n"
        "use = call:tests.support.psessions_apps:included_only\n"
        "session_multi.namespaces = prefs\n"
        "session_multi.prefs.factory = signed\n"
        "session_multi.prefs.secrte = typo\n"
    )
    status, _out, err = run([str(ini)])
    assert status == 2
    assert "session_multi.prefs.secrte" in err


def test_check_reports_findings_and_exits_1(tmp_path):
    status, out, err = run(["--check", write_ini(tmp_path, "badly_configured")])
    assert status == 1, err
    assert "psm.E001 error   fixable:" in out and "session fixation" in out
    assert "psm.W002 warning loose:" in out and "fix: set httponly=True" in out
    assert out.rstrip().endswith("(silence ids with session_multi.check.silence).")


def test_check_as_json_with_fail_level(tmp_path):
    ini = write_ini(tmp_path, "badly_configured")
    status, out, _ = run(["--check", ini, "--format", "json", "--fail-level", "error"])
    findings = json.loads(out)
    assert status == 1  # psm.E001 is an error
    assert {f["id"] for f in findings} >= {"psm.E001", "psm.W001", "psm.W002", "psm.W007"}
    assert set(findings[0]) == {"id", "level", "namespace", "message", "hint"}


def test_check_passes_below_the_fail_level_and_honours_silence(tmp_path):
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = call:tests.support.psessions_apps:badly_configured\n"
        "session_multi.check.silence = psm.E001 psm.W006\n"
    )
    status, out, _ = run(["--check", str(ini), "--fail-level", "error"])
    assert status == 0
    assert "psm.E001" not in out and "psm.W006" not in out and "psm.W002" in out


def test_check_on_the_demo_is_clean_but_for_information(tmp_path):
    from tests.support.demo import INI

    status, out, err = run(["--check", INI])
    assert status == 0, err
    assert out.count("psm.I001 info") == 2  # prefs and secure are client-side
    assert out.count("psm.I002 info") == 1  # prefs keeps its old secret as a fallback
    assert "warning" not in out.split("findings:")[0] and "error " not in out


def test_key_value_overrides_after_the_config_uri_fill_the_ini(tmp_path):
    # as proutes and pviews accept them: psessions development.ini http_port=8080
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\n"
        "use = call:tests.support.psessions_apps:included_only\n"
        "session_multi.namespaces = prefs\n"
        "session_multi.prefs.factory = signed\n"
        "session_multi.prefs.secret = from-the-ini-secret-of-32-bytes!\n"
        "session_multi.prefs.cookie_name = %(cookie)s\n"
    )
    status, out, err = run([str(ini), "cookie=from_the_command_line", "--format", "json"])
    assert status == 0, err
    assert json.loads(out)[0]["cookie_name"] == "from_the_command_line"
    # options may come first, and --check takes them too
    status, out, err = run(["--format", "json", "--check", str(ini), "cookie=other"])
    assert status == 1, err
    assert {finding["namespace"] for finding in json.loads(out)} == {"prefs"}


def test_a_config_var_without_equals_exits_2(tmp_path):
    status, out, err = run([write_ini(tmp_path, "with_namespaces"), "http_port"])
    assert status == 2 and out == ""
    assert "http_port" in err and "name=value" in err


def test_one_finding_is_counted_in_the_singular(tmp_path):
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = call:tests.support.psessions_apps:badly_configured\n"
        "session_multi.check.silence = psm.E001 psm.W001 psm.W002 psm.W003 psm.W007 psm.I001\n"
    )
    status, out, _ = run(["--check", str(ini)])
    assert status == 1
    assert out.splitlines()[-1].startswith("1 finding: 0 errors, 1 warning, 0 info"), out


def test_the_topology_of_each_redis_namespace_and_its_checks(tmp_path):
    # from settings, and nothing connects: these servers do not exist
    lines = ["[app:main]", "use = call:tests.support.psessions_apps:included_only"]
    options = {
        "namespaces": "clustered watched single prefs",
        "prefs.factory": "signed",
        "prefs.secret": "prefs-secret-of-at-least-32-bytes!",
        "prefs.cookie_name": "prefs",
        "clustered.redis_cluster_nodes": "10.9.9.1:7000 10.9.9.2:7000",
        "clustered.redis_socket_timeout": "0.5",
        "watched.redis_sentinels": "10.9.9.3:26379",
        "watched.redis_sentinel_master": "sessions",
        "watched.redis_socket_timeout": "0.5",
        "single.redis_url": "redis://10.9.9.4:6379/0",
    }
    for name in ("clustered", "watched", "single"):
        options[f"{name}.factory"] = "redis"
        options[f"{name}.secret"] = f"{name}-secret-of-at-least-32-bytes!"
        options[f"{name}.cookie_name"] = name
    lines += [f"session_multi.{key} = {value}" for key, value in options.items()]
    ini = tmp_path / "app.ini"
    ini.write_text("\n".join(lines) + "\n")

    status, out, err = run([str(ini), "--format", "json"])
    assert status == 0, err
    topology = {row["namespace"]: row["topology"] for row in json.loads(out)}
    assert topology == {
        "clustered": "cluster",
        "watched": "sentinel master sessions",
        "single": "single",
        "prefs": None,
    }
    status, out, err = run([str(ini), "--columns", "namespace,topology"])
    watched = next(line for line in out.splitlines() if line.startswith("watched"))
    assert "sentinel master sessions" in watched
    status, out, err = run([str(ini), "--check", "--format", "json"])
    redis_ids = ("psm.W011", "psm.W012")
    found = {(f["id"], f["namespace"]) for f in json.loads(out) if f["id"] in redis_ids}
    assert found == {("psm.W011", "watched"), ("psm.W012", "single")}


def test_a_failing_application_is_named_with_its_exception_type(tmp_path):
    ini = write_ini(tmp_path, "needs_a_setting")
    status, out, err = run([ini])
    assert status == 2 and out == ""
    assert err.startswith(f"psessions: cannot load '{ini}': KeyError: 'redis_url'"), err
    assert "Traceback" not in err


def test_verbose_prints_the_traceback_of_a_failing_application(tmp_path):
    ini = write_ini(tmp_path, "needs_a_setting")
    status, _out, err = run(["-v", ini])
    assert status == 2
    assert err.startswith("Traceback (most recent call last):")
    assert 'settings["redis_url"]' in err  # the line of the application that raised
    assert err.rstrip().endswith(f"psessions: cannot load '{ini}': KeyError: 'redis_url'")


def test_revoke_exits_1_when_the_ini_cannot_be_loaded(tmp_path):
    status, out, err = run([write_ini(tmp_path, "needs_a_setting"), "--revoke", "bob"])
    assert status == 1 and out == ""
    assert "KeyError: 'redis_url'" in err


@pytest.mark.parametrize(
    "options",
    [
        ["--check", "--revoke", "bob"],
        ["--revoke", "bob", "--format", "json"],
        ["--revoke", "bob", "--fail-level", "error"],
        ["--revoke", "bob", "--columns", "namespace"],
    ],
)
def test_revoke_takes_no_listing_or_audit_option(tmp_path, options):
    from pyramid_session_multi.revocation import SQLRevocationStore

    url = f"sqlite:///{tmp_path}/revocations.db"
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = call:tests.support.psessions_apps:with_namespaces\n"
        f"session_multi.revocations = {url}\n"
    )
    status, out, err = run([str(ini), *options])
    assert status == 2 and out == ""
    assert "--revoke changes state" in err and "run it on its own" in err
    assert SQLRevocationStore(url).revoked_at("bob") is None  # nothing revoked
    status, out, err = run([str(ini), "--revoke", "bob"])  # alone, it revokes
    assert status == 0, err
    assert SQLRevocationStore(url).revoked_at("bob") is not None


def test_an_option_that_would_do_nothing_is_refused(tmp_path):
    ini = write_ini(tmp_path, "with_namespaces")
    status, out, err = run([ini, "--fail-level", "error"])
    assert status == 2 and out == ""
    assert "--fail-level sets the exit status of --check" in err
    status, out, err = run([ini, "--check", "--columns", "namespace"])
    assert status == 2 and out == ""
    assert "--columns chooses the columns of the listing" in err


def test_json_gives_each_fallback_as_an_object(tmp_path):
    status, out, err = run([write_ini(tmp_path, "with_a_fallback"), "--format", "json"])
    assert status == 0, err
    (row,) = json.loads(out)
    assert row["fallbacks"] == [
        {
            "position": 1,
            "library": "pyramid cookie",
            "factory": "pyramid.session.BaseCookieSessionFactory.<locals>.CookieSession",
            "cookie_name": "old_prefs",
            "cookie_path": "/",
            "cookie_domain": None,
        }
    ]
    status, out, err = run([write_ini(tmp_path, "with_a_fallback"), "--columns", "fallbacks"])
    assert out.splitlines()[2] == "old_prefs (pyramid cookie)"


def test_json_can_be_narrowed_to_chosen_columns(tmp_path):
    ini = write_ini(tmp_path, "with_namespaces")
    status, out, err = run([ini, "--format", "json", "--columns", "namespace,secure"])
    assert status == 0, err
    assert json.loads(out) == [
        {"namespace": "prefs", "secure": False},
        {"namespace": "account", "secure": True},
    ]


def test_every_value_is_shown_printable_and_json_keeps_it_exact(tmp_path):
    status, out, err = run([write_ini(tmp_path, "with_control_characters"), "--columns", "all"])
    assert status == 0, err
    assert not any(ch in out for ch in "\x1b\r\x00\u202e\u2028")
    lines = out.splitlines()
    assert len(lines) == 3  # one row, one line
    assert lines[2].startswith("odd\\x1b[31mred\\r ")
    assert "\\x1b[31mred\\n2nd" in lines[2] and "\\u202e" in lines[2]
    status, out, err = run([write_ini(tmp_path, "with_control_characters"), "--format", "json"])
    (row,) = json.loads(out)
    assert row["namespace"] == "odd\x1b[31mred\r"
    assert row["validator"].endswith("\x1b[31mred\n2nd\u202e")


def test_check_text_is_printable(tmp_path):
    status, out, err = run(["--check", write_ini(tmp_path, "with_control_characters")])
    assert status == 1, err  # psm.W001: no Secure
    assert "\x1b" not in out and "\r" not in out
    assert "psm.W001 warning odd\\x1b[31mred\\r: " in out


def test_a_closed_pipe_ends_the_listing_quietly(tmp_path):
    # `psessions app.ini | head`: the reader goes before psessions writes
    script = sys.executable.rsplit("/", 1)[0] + "/psessions"
    process = subprocess.Popen(
        [script, write_ini(tmp_path, "with_namespaces"), "--columns", "all"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=str(tmp_path),
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    process.stdout.close()
    try:
        stderr = process.stderr.read()
        status = process.wait(timeout=120)  # a hang guard
    finally:
        process.stderr.close()
    assert b"Traceback" not in stderr and b"BrokenPipeError" not in stderr, stderr
    assert status == 141


def test_check_warns_of_a_revocation_store_kept_in_memory(tmp_path):
    status, out, err = run(
        ["--check", "--format", "json", write_ini(tmp_path, "with_a_memory_revocation_store")]
    )
    assert status == 1, err
    (finding,) = [f for f in json.loads(out) if f["id"] == "psm.W016"]
    assert (finding["level"], finding["namespace"]) == ("warning", "*")
    assert "kept in memory" in finding["message"]


def test_revoke_refuses_a_revocation_store_kept_in_memory(tmp_path):
    status, out, err = run(
        [write_ini(tmp_path, "with_a_memory_revocation_store"), "--revoke", "bob"]
    )
    assert status == 1 and out == ""
    assert "'bob' was not revoked" in err and "session_multi.revocations" in err


def test_each_namespace_shows_how_its_saves_meet_parallel_requests(tmp_path):
    status, out, err = run([write_ini(tmp_path, "with_namespaces")])
    assert status == 0, err
    assert "Writes" in out.splitlines()[0]  # a default column
    ini = write_ini(tmp_path, "with_namespaces")
    status, out, err = run([ini, "--columns", "namespace,concurrent_writes"])
    assert status == 0, err
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[2:]}
    assert rows == {"prefs": "overwrite", "account": "merge"}


def test_the_steps_of_each_namespace_are_a_column(tmp_path):
    status, out, err = run([write_ini(tmp_path, "with_namespaces"), "--columns", "namespace,steps"])
    assert status == 0, err
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]}
    # a server-side namespace merges its saves first (see docs/narr/parallel.rst)
    assert rows == {"prefs": ["-"], "account": ["merge;", "validator"]}
    status, out, err = run([write_ini(tmp_path, "with_a_fallback"), "--format", "json"])
    assert status == 0, err
    assert [row["steps"] for row in json.loads(out)] == [["fallbacks"]]
