"""A throwaway PostgreSQL for integration tests (issue 13: nodes sharing one store), the
same way as tests/pg/with-postgres.sh: Debian's postgresql package, initdb in a temporary
directory as an unprivileged user (the package's "postgres" when we are root: initdb
refuses root), fsync and synchronous_commit on as in production, reachable only on a Unix
socket in that directory. Stopped and removed by stop()."""
import glob
import os
import shutil
import socket
import subprocess
import tempfile


def bindir():
    dirs = sorted(d for d in glob.glob("/usr/lib/postgresql/*/bin")
                  if os.access(os.path.join(d, "initdb"), os.X_OK))
    return dirs[-1] if dirs else None


class PgServer:
    def __init__(self):
        self.bin = bindir()
        if not self.bin:
            raise RuntimeError("no initdb under /usr/lib/postgresql/*/bin "
                               "(scripts/install-deps.sh installs postgresql)")
        self.dir = tempfile.mkdtemp(prefix="tl-itpg.")
        os.chmod(self.dir, 0o755)
        self.root = os.geteuid() == 0
        if self.root:
            shutil.chown(self.dir, "postgres")
        self.data = os.path.join(self.dir, "data")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]  # names the Unix socket; no TCP listener
        s.close()
        self.started = False
        self.schemas = 0

    def _as_user(self, args, **kw):
        if self.root:
            args = ["runuser", "-u", "postgres", "--"] + args
        return subprocess.run(args, capture_output=True, text=True, **kw)

    def start(self):
        r = self._as_user([os.path.join(self.bin, "initdb"), "-D", self.data, "--auth=trust",
                           "--username=trunkline", "-E", "UTF8", "--no-locale"], timeout=120)
        if r.returncode:
            raise RuntimeError("initdb failed: " + r.stdout + r.stderr)
        opts = ("-c listen_addresses='' -c unix_socket_directories='%s' -p %d -c fsync=on "
                "-c synchronous_commit=on -c max_connections=60" % (self.dir, self.port))
        r = self._as_user([os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-l",
                           os.path.join(self.dir, "server.log"), "-w", "-t", "60", "-o", opts,
                           "start"], timeout=90)
        if r.returncode:
            raise RuntimeError("pg_ctl start failed: " + r.stdout + r.stderr + self.log())
        self.started = True
        return self

    @property
    def conninfo(self):
        return "host=%s port=%d user=trunkline dbname=postgres" % (self.dir, self.port)

    def psql(self, sql):
        r = subprocess.run([os.path.join(self.bin, "psql"), "-qAt", "-v", "ON_ERROR_STOP=1",
                            "-d", self.conninfo, "-c", sql], capture_output=True, text=True,
                           timeout=60)
        if r.returncode:
            raise RuntimeError("psql %r: %s" % (sql, r.stderr))
        return r.stdout.strip()

    def new_store(self, name):
        """A store target of its own: a fresh schema, named in the conninfo's search_path."""
        self.schemas += 1
        schema = "%s_%d" % (name, self.schemas)
        self.psql("CREATE SCHEMA %s" % schema)
        return "%s options='-csearch_path=%s'" % (self.conninfo, schema)

    def log(self):
        try:
            with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self):
        if self.started:
            self._as_user([os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m",
                           "immediate", "-w", "stop"], timeout=60)
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)
