"""The store setting (issue 13): SQLite by default, PostgreSQL by a conninfo whose password
never sits in the setting. The PostgreSQL test runs when TRUNKLINE_TEST_PG names a server
(make test-pg runs this file under tests/pg/with-postgres.sh)."""
import glob
import os
import subprocess
import time

import pytest

from conftest import BIN

SECRET = "Sup3r-S3cret-db-pw"
PG = os.environ.get("TRUNKLINE_TEST_PG", "")


def _serve(tmp_path, env_extra, extra=()):
    d = tmp_path / "var"
    d.mkdir(mode=0o700, exist_ok=True)
    env = dict(os.environ)
    env.update({"TRUNKLINE_DATA_DIR": str(d), "TRUNKLINE_API_LISTEN": "127.0.0.1:0",
                "TRUNKLINE_SIP_TCP_PORT": "0", "TRUNKLINE_SIP_TLS_PORT": "0",
                "TRUNKLINE_LOG_FILE": ""})
    env.update(env_extra)
    return subprocess.run([BIN, "serve", *extra], capture_output=True, text=True, timeout=30,
                          env=env, cwd=str(tmp_path))


@pytest.mark.parametrize("store", [
    "postgresql://trunkline:%s@127.0.0.1:1/trunkline" % SECRET,
    "postgres://trunkline:%s@db.invalid/trunkline?sslmode=require" % SECRET,
    "postgresql://trunkline@127.0.0.1:1/trunkline?password=%s" % SECRET,
    "host=127.0.0.1 port=1 dbname=trunkline password=%s" % SECRET,
])
def test_password_in_the_store_setting_is_refused(tmp_path, store):
    r = _serve(tmp_path, {}, ["--store", store])
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "store_password_file" in out and "TRUNKLINE_STORE_PASSWORD" in out, out
    assert SECRET not in out  # not even in the refusal


def test_store_password_file_readable_by_others_is_refused(tmp_path):
    pw = tmp_path / "db.password"
    pw.write_text(SECRET + "\n")
    os.chmod(pw, 0o644)
    r = _serve(tmp_path, {"TRUNKLINE_STORE": "postgresql://trunkline@127.0.0.1:1/trunkline",
                          "TRUNKLINE_STORE_PASSWORD_FILE": str(pw)})
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "readable by group or others" in out and "chmod 600" in out, out
    assert SECRET not in out


def _psql(sql):
    psql = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))[-1]
    subprocess.run([psql, "-v", "ON_ERROR_STOP=1", "-qAt", "-d", PG, "-c", sql], check=True,
                   capture_output=True, text=True, timeout=30)


@pytest.mark.skipif(not PG, reason="needs TRUNKLINE_TEST_PG (make test-pg)")
def test_daemon_on_postgresql(make_daemon, tmp_path):
    schema = "it_%d" % os.getpid()
    _psql("DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s" % (schema, schema))
    try:
        store = "%s options='-csearch_path=%s'" % (PG, schema)
        # a password from the environment is handed to libpq (trust auth ignores it) and
        # never logged
        d = make_daemon(env={"TRUNKLINE_STORE": store, "TRUNKLINE_STORE_PASSWORD": SECRET})
        assert "backend=postgresql" in d.log_text()
        assert d.api("GET", "/readyz", token="").status_code == 200
        body = {"number": "+493012345678", "label": "Berlin",
                "outbound_trunk": {"address": "sip.example.com", "username": "acme_trunk",
                                   "password": "trunk-" + SECRET, "transport": "tls"}}
        r = d.api("POST", "/v1/phone-numbers", json=body)
        assert r.status_code == 201, r.text
        assert d.api("POST", "/v1/phone-numbers", json=body).status_code == 409
        d.restart()
        r = d.api("GET", "/v1/phone-numbers")
        assert [n["number"] for n in r.json()["data"]] == ["+493012345678"]
        assert not os.path.exists(os.path.join(d.data_dir, "trunkline.db"))

        # the server drops the daemon's connection: readyz fails at most until the
        # connection is reopened, then answers again without a restart
        _psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
              "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'")
        deadline = time.monotonic() + 10
        codes = []
        while time.monotonic() < deadline:
            codes.append(d.api("GET", "/readyz", token="").status_code)
            if codes[-1] == 200:
                break
        assert codes[-1] == 200, codes
        assert "store.pg_reconnected" in d.wait_log(lambda t: "store.pg_reconnected" in t)
        assert SECRET not in d.log_text()

        # the offline recovery command reaches the same store (while the daemon runs)
        env = dict(os.environ, TRUNKLINE_STORE=store)
        r = subprocess.run([BIN, "token", "create", "--data-dir", d.data_dir, "--name", "rescue"],
                           capture_output=True, text=True, timeout=30, env=env)
        assert r.returncode == 0, r.stderr
        tok = [l.split()[1] for l in r.stdout.splitlines() if l.startswith("token: ")][0]
        r = d.api("GET", "/v1/tokens", token=tok)
        assert r.status_code == 200 and "rescue" in [t["name"] for t in r.json()["data"]]
    finally:
        _psql("DROP SCHEMA IF EXISTS %s CASCADE" % schema)
