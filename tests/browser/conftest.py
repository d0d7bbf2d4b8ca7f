"""Browser tests of the web UI (issue 12): Debian's chromium, headless, driven through
chromium-driver by python3-selenium, against the real daemon started as the integration
tests start it (tests/integration/conftest.py).

One daemon and one browser serve the whole run (a fresh Chromium profile in a temporary
directory; no outside network: every background service of Chromium is off). Tests wait
for conditions with WebDriverWait, never for time. Screenshots of the main screens go to
build/screenshots/ (TRUNKLINE_SCREENSHOTS overrides) for a person to look at.
"""
import os
import random
import shutil

import pytest

from uisupport import SHOTS, Daemon, available, free_port, make_browser
# when the integration and browser suites run in one pytest process, this file may be the
# module "conftest" that integration modules import their helpers from
from uisupport import BIN, ROOT  # noqa: F401

import dnsserver  # noqa: E402  (tests/integration, put on sys.path by uisupport)


def pytest_collection_modifyitems(config, items):
    if not available():
        skip = pytest.mark.skip(reason="chromium, chromium-driver or python3-selenium missing: "
                                       "run scripts/install-deps.sh")
        for it in items:
            if "browser" in str(it.fspath):
                it.add_marker(skip)


@pytest.fixture(scope="session")
def dns():
    """A DNS server for the trunk check's lookups; a test puts its zone in (srv.zone)."""
    srv = dnsserver.start({})
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def gw(tmp_path_factory, dns):
    """The daemon: SIP on loopback for the test call, RTP in a test range, the test DNS
    server for the trunk check's lookups."""
    base = 21000 + random.randrange(45) * 200
    env = {"TRUNKLINE_SIP_LISTEN": "127.0.0.1",
           "TRUNKLINE_SIP_TCP_PORT": str(free_port()),
           "TRUNKLINE_SIP_TLS_PORT": str(free_port()),
           "TRUNKLINE_RTP_PORT_MIN": str(base), "TRUNKLINE_RTP_PORT_MAX": str(base + 199),
           "TRUNKLINE_MEDIA_TIMEOUT_S": "5",
           "TRUNKLINE_SIP_DNS_SERVERS": "127.0.0.1:%d" % dns.port,
           "TRUNKLINE_SIP_T1_MS": "50"}
    d = Daemon(tmp_path_factory.mktemp("gw"), env).start()
    d.sip_port = int(env["TRUNKLINE_SIP_TCP_PORT"])
    yield d
    code = d.stop()
    assert code == 0, "daemon exited with %s\n%s" % (code, d.log_text()[-4000:])


@pytest.fixture(scope="session")
def browser():
    drv = make_browser()
    yield drv
    drv.quit()
    shutil.rmtree(drv.profile_dir, ignore_errors=True)


@pytest.fixture
def shot(browser):
    os.makedirs(SHOTS, exist_ok=True)

    def take(name, drv=None):
        (drv or browser).save_screenshot(os.path.join(SHOTS, name + ".png"))
    return take
