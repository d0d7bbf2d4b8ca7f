"""What the browser tests share (imported by conftest.py and the tests; a module of its own
so that it does not depend on which conftest is "conftest" when the integration and
browser suites run in one pytest process)."""
import importlib.util
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ITEST = os.path.join(os.path.dirname(HERE), "integration")
if ITEST not in sys.path:
    sys.path.insert(0, ITEST)

# the integration harness (tests/integration/conftest.py), loaded under a name of its own
_spec = importlib.util.spec_from_file_location("tl_itest_conftest", os.path.join(ITEST, "conftest.py"))
itest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(itest)
BIN, ROOT, free_port, Daemon = itest.BIN, itest.ROOT, itest.free_port, itest.Daemon

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
except ImportError:  # install-deps installs python3-selenium; the tests then skip
    webdriver = None

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SHOTS = os.environ.get("TRUNKLINE_SCREENSHOTS", os.path.join(ROOT, "build", "screenshots"))
WAIT = 20  # seconds a condition may take before a test fails (never a sleep)


def available():
    return webdriver is not None and os.path.exists(CHROMEDRIVER) and os.path.exists(CHROMIUM)


def make_browser(width=1280, height=900):
    """Headless Chromium with a fresh profile; every background service off (no outside
    network here)."""
    profile = tempfile.mkdtemp(prefix="tl-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
              "--user-data-dir=" + profile, "--window-size=%d,%d" % (width, height),
              "--lang=en-US"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.profile_dir = profile
    return drv
