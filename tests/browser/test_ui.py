"""The web UI in a real (headless) Chromium against the real daemon: sign-in, the import
dialog with an API field error shown at its field and then fixed, editing the trunk while
the agent stays, reassign / unassign / delete, the events and calls views after a real call
placed by the test, member read-only, XSS attempts shown as text, the CSP header, keyboard
and dialog focus, 360 px with long and right-to-left labels, the trunk check, tokens and
workspaces; and the numbers page with 10,000 numbers, measured and printed.

Every wait is WebDriverWait on a condition (an element, a text, an API state), never time."""
import json
import os
import re
import socket
import sqlite3
import statistics

import pytest
import requests
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

import dnsserver
from uisupport import SHOTS, WAIT, Daemon
from rtpclient import RtpClient, known_sequence
from sipclient import SipClient, sdp_offer
from test_calls_api import register
from test_sip_uac import PyUas, response

XSS_UA = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">"
XSS_LABEL = "<img src=x onerror=\"window.__xss=3\"><b>bold</b><script>window.__xss=4</script>"
RTL_LABEL = "مكتب برلين الرئيسي — خط الدعم"
LONG_LABEL = "Hauptniederlassung-Kundenservice-" * 3 + "X" * 20


# ---------------------------------------------------------------- helpers ----

def wait(drv, cond, timeout=WAIT):
    def safe(d):
        try:
            return cond(d)
        except StaleElementReferenceException:
            return False
    return WebDriverWait(drv, timeout, poll_frequency=0.05).until(safe)


def el(drv, css):
    return wait(drv, lambda d: d.find_element(By.CSS_SELECTOR, css))


def present(drv, css):
    return bool(drv.find_elements(By.CSS_SELECTOR, css))


def text_of(drv, css):
    return drv.find_element(By.CSS_SELECTOR, css).text


def wait_text(drv, css, needle):
    return wait(drv, lambda d: needle in d.find_element(By.CSS_SELECTOR, css).text
                and d.find_element(By.CSS_SELECTOR, css))


def click(drv, elem):
    """Clicks like a person who scrolled the control into view (the dialog's sticky title
    and buttons would cover a control chromedriver scrolls just to the edge)."""
    drv.execute_script("arguments[0].scrollIntoView({block: 'center'})", elem)
    elem.click()
    return elem


def search_for(drv, text):
    """Types into the search box and waits for the table to show the answer to all of it
    (each keystroke is a search; only the last one's rows stay)."""
    box = drv.find_element(By.ID, "search")
    box.clear()
    box.send_keys(text)
    wait(drv, lambda d: d.find_element(By.ID, "numbers").get_attribute("data-searched") == text)


def active_id(drv):
    return drv.execute_script("return document.activeElement && document.activeElement.id")


def sign_in(drv, d, token=None, hash_="#/numbers"):
    """A fresh page, signed in; waits for the page the hash names."""
    drv.get(d.url + "/")
    drv.execute_script("sessionStorage.clear()")
    drv.get(d.url + "/" + hash_)
    drv.refresh()
    box = el(drv, "#token")
    box.send_keys(token or d.admin_token)
    drv.find_element(By.ID, "signin").click()
    wait(drv, lambda x: present(x, "#signout"))
    if hash_ == "#/numbers":
        el(drv, "#numbers[data-ready]")


def open_page(drv, d, hash_, ready_css):
    drv.execute_script("location.hash = arguments[0]", hash_)
    return el(drv, ready_css)


def api(d, method, path, token=None, **kw):
    return d.api(method, path, token=token, **kw)


def echo_id(d):
    r = api(d, "GET", "/v1/agents")
    return [a for a in r.json()["data"] if a["name"] == "echo"][0]["id"]


def make_agent(d, name):
    r = api(d, "POST", "/v1/agents", json={"name": name, "kind": "websocket",
                                         "url": "wss://agents.example/" + name})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def import_api(d, number, label="UI test", agent=True, inbound="tcp", address="sip.telnyx.com",
               transport="tls"):
    body = {"number": number, "label": label,
            "outbound_trunk": {"address": address, "transport": transport,
                               "media_encryption": "disabled" if transport == "udp" else "required"}}
    if agent:
        body["agent_id"] = echo_id(d)
    if inbound:
        body["inbound_trunk"] = {"transport": inbound, "media_encryption": "disabled",
                                 "allow_any_source": True}
    r = api(d, "POST", "/v1/phone-numbers", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def field_error(drv, input_id):
    """The error text shown for an input (its aria-describedby …-err element)."""
    ids = drv.find_element(By.ID, input_id).get_attribute("aria-describedby").split()
    err = [i for i in ids if i.endswith("-err")][0]
    return drv.find_element(By.ID, err)


def no_horizontal_scroll(drv):
    return drv.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.fixture(autouse=True)
def no_script_errors(browser):
    """No page error and no CSP violation in any test: the page's own code must run
    under the policy, and server strings must never become markup."""
    browser.get_log("browser")  # drop what came before
    yield
    bad = [e["message"] for e in browser.get_log("browser")
           if e["level"] == "SEVERE" and ("Uncaught" in e["message"] or "Content Security Policy"
                                         in e["message"] or "Refused to" in e["message"])]
    assert not bad, bad


# ---------------------------------------------------------------- tests ----

def test_csp_header_and_page_load(gw, browser, shot):
    r = requests.get(gw.url + "/", timeout=10)
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "base-uri 'none'" in csp and "form-action 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    api_r = api(gw, "GET", "/v1/me")
    assert api_r.headers["Cache-Control"] == "no-store"
    browser.get(gw.url + "/")
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    el(browser, "#token")
    # the page runs: no inline script needed, no violation reported (fixture)
    assert browser.execute_script("return document.querySelectorAll('script:not([src])').length") == 0
    assert browser.execute_script("return document.querySelectorAll('[style]').length") == 0
    shot("01-sign-in")


def test_sign_in_and_out(gw, browser):
    browser.get(gw.url + "/")
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    el(browser, "#token").send_keys("tlk_" + "x" * 43)
    browser.find_element(By.ID, "signin").click()
    err = wait(browser, lambda d: d.find_element(By.ID, "signin-error").is_displayed()
               and d.find_element(By.ID, "signin-error"))
    assert "not valid" in err.text
    box = browser.find_element(By.ID, "token")
    box.clear()
    box.send_keys(gw.admin_token)
    browser.find_element(By.ID, "signin").click()
    el(browser, "#numbers[data-ready]")
    assert text_of(browser, "#role") == "admin"
    # the token is in this tab's sessionStorage, not in a cookie
    assert browser.get_cookies() == []
    assert browser.execute_script("return sessionStorage.getItem('trunkline.token')") == gw.admin_token
    browser.refresh()  # stays signed in within the tab
    el(browser, "#numbers[data-ready]")
    browser.find_element(By.ID, "signout").click()
    el(browser, "#token")
    assert browser.execute_script("return sessionStorage.getItem('trunkline.token')") is None


def test_import_with_field_error_then_fixed(gw, browser, shot):
    number = "+4930555000101"
    sign_in(browser, gw)
    browser.find_element(By.ID, "import").click()
    el(browser, "#import-sip").click()
    el(browser, "#number-form")
    assert active_id(browser) == "provider"
    Select(browser.find_element(By.ID, "provider")).select_by_value("telnyx")
    # pre-filled, and the carrier side explained: URIs to copy, SRV records for Telnyx
    assert browser.find_element(By.ID, "o-address").get_attribute("value") == "sip.telnyx.eu"
    guide = browser.find_element(By.CSS_SELECTOR, ".form-side").text
    assert "SRV" in guide and "_sips._tcp.gw.test" in guide and "E.164" in guide
    assert ";transport=tls" in guide
    assert browser.find_elements(By.CSS_SELECTOR, ".form-side .copy button")
    shot("03-import-dialog")
    # registration-only services: explained, and the form cannot be sent
    Select(browser.find_element(By.ID, "provider")).select_by_value("sipgate")
    note = el(browser, "#registration-only")
    assert "register" in note.text.lower() and "forward" in note.text.lower()
    assert not browser.find_element(By.ID, "save").is_enabled()
    shot("04-import-registration-only")
    Select(browser.find_element(By.ID, "provider")).select_by_value("telnyx")

    browser.find_element(By.ID, "number").send_keys(number)
    browser.find_element(By.ID, "label").send_keys("Imported in the browser")
    addr = browser.find_element(By.ID, "o-address")
    addr.clear()
    addr.send_keys("sip:sip.telnyx.eu:5060")  # the classic mistake
    click(browser, browser.find_element(By.CSS_SELECTOR, "[data-path='outbound_trunk.headers']"))
    el(browser, "[data-path='outbound_trunk.headers[0].name']").send_keys("X-Account")
    browser.find_element(By.CSS_SELECTOR, "[data-path='outbound_trunk.headers[0].value']").send_keys("4711")
    Select(browser.find_element(By.ID, "agent")).select_by_visible_text("echo")
    browser.find_element(By.ID, "save").click()

    wait(browser, lambda d: d.find_element(By.ID, "o-address").get_attribute("aria-invalid") == "true")
    err = field_error(browser, "o-address")
    assert err.is_displayed() and "outbound_trunk.address" in err.text
    assert active_id(browser) == "o-address"
    shot("05-import-field-error")
    # fixed; next, an inbound trunk open to every address is refused until asked for
    # (issue 11): the error shows under the allowed addresses
    addr.clear()
    addr.send_keys("sip.telnyx.eu")
    browser.find_element(By.ID, "save").click()
    add_addr = browser.find_element(By.CSS_SELECTOR, "[data-path='inbound_trunk.allowed_addresses']")
    box = add_addr.find_element(By.XPATH, "..")
    wait(browser, lambda d: "allow_any_source" in box.find_element(By.CSS_SELECTOR, ".field-error").text)
    click(browser, browser.find_element(By.ID, "i-any-source"))
    # ticked: the dialog closes on the number's page
    browser.find_element(By.ID, "save").click()
    wait_text(browser, "#number-title", number)
    assert "echo" in text_of(browser, "#current-agent")
    assert "imported" in text_of(browser, "#saved")
    n = api(gw, "GET", "/v1/phone-numbers", params={"number": number}).json()["data"][0]
    assert n["outbound_trunk"]["address"] == "sip.telnyx.eu"
    assert n["outbound_trunk"]["headers"] == [{"name": "X-Account", "value": "4711"}]
    assert n["inbound_trunk"]["transport"] == "tls" and n["label"] == "Imported in the browser"
    assert n["inbound_trunk"]["allow_any_source"] is True
    assert [w["code"] for w in n["warnings"]] == ["inbound_unauthenticated"]  # reads keep it


def test_edit_trunk_keeps_agent_and_shows_warnings(gw, browser, shot):
    number = "+4930555000102"
    pid = import_api(gw, number)
    sign_in(browser, gw, hash_="#/numbers/" + pid)
    wait_text(browser, "#number-title", number)
    browser.find_element(By.ID, "edit").click()
    el(browser, "#number-form")
    assert browser.find_element(By.ID, "o-address").get_attribute("value") == "sip.telnyx.com"
    assert not browser.find_element(By.ID, "number").is_enabled()
    assert not present(browser, "#agent")  # an edit keeps the agent
    addr = browser.find_element(By.ID, "o-address")
    addr.clear()
    addr.send_keys("sip.telnyx.eu")
    Select(browser.find_element(By.ID, "o-transport")).select_by_value("udp")
    Select(browser.find_element(By.ID, "o-media")).select_by_value("required")  # risky: warns
    browser.find_element(By.ID, "save").click()
    wait_text(browser, "#ob-address", "sip.telnyx.eu")
    warn = el(browser, "#warnings li")
    assert warn.get_attribute("data-field") == "outbound_trunk.media_encryption"
    assert "echo" in text_of(browser, "#current-agent")
    n = api(gw, "GET", "/v1/phone-numbers/" + pid).json()
    assert n["agent_id"] == echo_id(gw) and n["outbound_trunk"]["transport"] == "udp"
    shot("06-number-edited-warnings")


def test_reassign_unassign_delete(gw, browser, shot):
    number = "+4930555000103"
    sales = make_agent(gw, "sales")
    pid = import_api(gw, number)
    sign_in(browser, gw, hash_="#/numbers/" + pid)
    wait_text(browser, "#current-agent", "echo")
    Select(el(browser, "#assign-agent")).select_by_value(sales)
    browser.find_element(By.ID, "assign").click()
    wait_text(browser, "#current-agent", "sales")
    assert api(gw, "GET", "/v1/phone-numbers/" + pid).json()["agent_id"] == sales
    el(browser, "#unassign").click()
    wait_text(browser, "#current-agent", "None")
    assert api(gw, "GET", "/v1/phone-numbers/" + pid).json()["agent_id"] is None

    # the agent's Phone numbers tab assigns it again
    open_page(browser, gw, "#/agents/" + sales, "#tab-numbers").click()
    el(browser, "#assign-search").send_keys(number[3:])
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#assign-results button"))[0].click()
    wait_text(browser, "#agent-numbers", number)
    assert api(gw, "GET", "/v1/phone-numbers/" + pid).json()["agent_id"] == sales
    panel = text_of(browser, "#panel-numbers")
    assert "null" not in panel and "undefined" not in panel
    shot("07-agent-numbers-tab")

    # delete, confirmed by a dialog that names the number
    open_page(browser, gw, "#/numbers/" + pid, "#delete").click()
    assert text_of(browser, "#confirm-number") == number
    dialog = el(browser, "dialog[open]")
    assert number in dialog.text
    shot("08-delete-confirm")
    buttons = dialog.find_elements(By.CSS_SELECTOR, ".actions button")
    [b for b in buttons if b.text == "Delete " + number][0].click()
    wait(browser, lambda d: d.execute_script("return location.hash") == "#/numbers")
    el(browser, "#numbers[data-ready]")
    assert api(gw, "GET", "/v1/phone-numbers/" + pid).status_code == 404


def call_echo(d, number):
    """A real inbound call: INVITE over TCP, a second of RTP echoed, BYE."""
    rtp = RtpClient()
    sc = SipClient(d.sip_port, "tcp")
    try:
        r = sc.invite(number, sdp_offer(rtp.port))
        assert r.code == 200, r.raw
        sc.ack()
        from sipclient import parse_answer
        ip, port = parse_answer(r.body)[:2]
        rtp.set_remote(ip, port)
        rtp.run(known_sequence(50, seed=3))
        assert sc.bye().code == 200
        return sc.call_id
    finally:
        sc.close()
        rtp.close()


def register_with(d, to_user, ua):
    raw = register(to_user, to_user, "UDP", 5999).decode()
    raw = re.sub(r"User-Agent: [^\r]*", "User-Agent: " + ua, raw)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(10)
        s.sendto(raw.encode(), ("127.0.0.1", d.sip_port))
        data, _ = s.recvfrom(65535)
    assert data.startswith(b"SIP/2.0 403"), data[:100]


def test_events_and_calls_after_a_real_call(gw, browser, shot):
    number = "+4930555000104"
    pid = import_api(gw, number, label="Calls test")
    call_id = call_echo(gw, number)
    register_with(gw, number, XSS_UA)  # a carrier trying to REGISTER: an event
    wait(browser, lambda _: [c for c in api(gw, "GET", "/v1/calls", params={"number_id": pid}).json()["data"]
                             if c["sip_call_id"] == call_id and c["ended_at"]])
    wait(browser, lambda _: api(gw, "GET", "/v1/phone-numbers/%s/events" % pid).json()["data"])

    sign_in(browser, gw)
    search_for(browser, number[1:])
    row = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#numbers-body tr[data-id='%s']" % pid))
    assert "REGISTER" in row.text  # the latest-event badge
    row.find_element(By.CSS_SELECTOR, "a").click()
    ev = el(browser, "#events li[data-code='registration_attempt']")
    assert "static" in ev.text  # the hint
    ev.find_element(By.CSS_SELECTOR, "summary").click()
    wait(browser, lambda d: XSS_UA in ev.text)  # the User-Agent, as text
    assert not browser.find_elements(By.CSS_SELECTOR, "#events script, #events img")
    assert browser.execute_script("return window.__xss") is None
    calls = el(browser, "#number-calls")
    assert "inbound" in calls.text and "PCMU" in calls.text
    shot("09-number-detail-events-calls")
    calls.find_element(By.CSS_SELECTOR, "a").click()
    fields = el(browser, "#call-fields")
    assert "inbound" in fields.text and "PCMU" in fields.text and "bye received" in fields.text
    assert call_id in fields.text
    stats = browser.find_element(By.ID, "rtp-stats").text
    got = int(re.search(r"Packets received\s+(\d+)", stats).group(1))
    assert got > 0
    shot("10-call-detail")
    open_page(browser, gw, "#/calls", "#calls")
    assert number in text_of(browser, "#calls") or number[1:] in text_of(browser, "#calls")
    shot("11-calls")


def test_xss_in_label_is_text(gw, browser):
    number = "+4930555000105"
    pid = import_api(gw, number, label=XSS_LABEL, agent=False)
    sign_in(browser, gw)
    search_for(browser, number[1:])
    cell = wait(browser, lambda d: d.find_element(
        By.CSS_SELECTOR, "#numbers-body tr[data-id='%s'] .label-cell" % pid))
    assert cell.text == XSS_LABEL
    assert not browser.find_elements(By.CSS_SELECTOR, "#numbers-body img, #numbers-body script, #numbers-body b")
    cell.find_element(By.XPATH, "..").find_element(By.CSS_SELECTOR, "a").click()
    title = el(browser, ".title-label")
    assert title.text == XSS_LABEL
    assert browser.execute_script("return window.__xss") is None


def test_member_is_read_only(gw, browser, shot):
    number = "+4930555000106"
    pid = import_api(gw, number)
    r = api(gw, "POST", "/v1/tokens", json={"role": "member", "name": "viewer"})
    member = r.json()["token"]
    sign_in(browser, gw, member)
    assert text_of(browser, "#role") == "member"
    assert not present(browser, "#import")
    assert not browser.find_elements(By.LINK_TEXT, "Tokens")
    open_page(browser, gw, "#/numbers/" + pid, "#number-title")
    el(browser, "#read-only")
    for css in ("#edit", "#delete", "#assign", "#unassign", "#check", "#test-call"):
        assert not present(browser, css), css
    shot("12-member-read-only")
    open_page(browser, gw, "#/agents", "#agents")
    assert "echo" in text_of(browser, "#agents")
    for css in ("#new-websocket-agent", "#new-twiml-agent", "#twilio"):
        assert not present(browser, css), css
    open_page(browser, gw, "#/agents/" + make_agent(gw, "member-sees"), "#agent-settings")
    assert not present(browser, "#agent-edit")


def test_keyboard_and_dialog_focus(gw, browser):
    sign_in(browser, gw)
    btn = browser.find_element(By.ID, "import")
    btn.send_keys(Keys.ENTER)  # a button works from the keyboard
    wait(browser, lambda d: active_id(d) == "import-sip")
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    dialog = el(browser, "dialog[open]")
    assert active_id(browser) == "provider"
    # every input has a label
    unlabeled = browser.execute_script("""
        return [...document.querySelectorAll('dialog input, dialog select, dialog textarea')]
          .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).length""")
    assert unlabeled == 0
    # Tab and Shift+Tab never leave the dialog
    n = browser.execute_script(
        "return arguments[0].querySelectorAll('button, input, select, textarea').length", dialog)
    for key in (Keys.TAB, Keys.SHIFT + Keys.TAB):
        for _ in range(n + 3):
            browser.switch_to.active_element.send_keys(key)
            assert browser.execute_script(
                "return arguments[0].contains(document.activeElement)", dialog), key
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait(browser, lambda d: not present(d, "dialog[open]"))
    assert active_id(browser) == "import"  # focus back where it was


def test_narrow_long_and_rtl(gw, browser, shot):
    rtl = import_api(gw, "+4930555000107", label=RTL_LABEL)
    long_ = import_api(gw, "+4930555000108", label=LONG_LABEL)
    sign_in(browser, gw)
    browser.set_window_size(360, 800)
    try:
        search_for(browser, "55500010")
        wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#numbers-body tr[data-id='%s']" % rtl))
        cell = browser.find_element(By.CSS_SELECTOR, "tr[data-id='%s'] .label-cell bdi" % rtl)
        assert cell.text == RTL_LABEL
        assert browser.execute_script("return getComputedStyle(arguments[0]).direction", cell) == "rtl"
        assert no_horizontal_scroll(browser)
        shot("13-numbers-360px")
        open_page(browser, gw, "#/numbers/" + long_, "#number-title")
        assert no_horizontal_scroll(browser)
        shot("14-number-360px-long-label")
        open_page(browser, gw, "#/numbers", "#numbers[data-ready]")
        browser.find_element(By.ID, "import").click()
        el(browser, "#import-sip").click()
        el(browser, "#number-form")
        assert no_horizontal_scroll(browser)
        shot("15-import-360px")
        browser.switch_to.active_element.send_keys(Keys.ESCAPE)
        wait(browser, lambda d: not present(d, "dialog[open]"))
        open_page(browser, gw, "#/agents", "#agents")
        assert no_horizontal_scroll(browser)
        browser.find_element(By.ID, "new-websocket-agent").click()
        el(browser, "dialog[open] #agent-form")
        click(browser, browser.find_element(By.CSS_SELECTOR, "[data-path='headers']"))
        assert no_horizontal_scroll(browser)
        shot("15b-agent-form-360px")
        browser.switch_to.active_element.send_keys(Keys.ESCAPE)
        wait(browser, lambda d: not present(d, "dialog[open]"))
        assert active_id(browser) == "new-websocket-agent"
    finally:
        browser.set_window_size(1280, 900)


def test_check_trunk_in_plain_words(gw, browser, dns, shot):
    def h(start, hdrs):
        return [response(start, hdrs, "200 OK")] if start.startswith("OPTIONS") else []
    uas = PyUas(h)
    dns.zone = dnsserver.Zone({"_sip._udp.carrier.test": {"SRV": [[0, 0, uas.port, "uas.carrier.test"]]},
                               "uas.carrier.test": {"A": ["127.0.0.1"]}})
    try:
        pid = import_api(gw, "+4930555000109", address="carrier.test", transport="udp")
        bad = import_api(gw, "+4930555000110", address="nowhere.test", transport="tcp")
        sign_in(browser, gw, hash_="#/numbers/" + pid)
        el(browser, "#check").click()
        res = el(browser, "#check-result")
        assert res.get_attribute("data-step") == "ok"
        assert "reachable" in res.text and "200 OK" in res.text
        assert "127.0.0.1:%d" % uas.port in res.text
        shot("16-check-ok")
        open_page(browser, gw, "#/numbers/" + bad, "#check").click()
        res = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#check-result[data-step='dns']"))
        assert "does not resolve" in res.text
        shot("17-check-dns")
    finally:
        uas.stop()


def test_operator_tokens_and_workspaces(gw, browser, shot):
    sign_in(browser, gw, gw.operator_token)
    assert text_of(browser, "#role") == "operator"
    el(browser, ".ws-pick select")
    open_page(browser, gw, "#/workspaces", "#workspaces")
    browser.find_element(By.ID, "ws-name").send_keys("Acme (UI)")
    browser.find_element(By.ID, "ws-create").click()
    wait_text(browser, "#workspaces", "Acme (UI)")
    shot("18-workspaces")
    open_page(browser, gw, "#/tokens", "#tokens")
    browser.find_element(By.ID, "token-name").send_keys("ui made")
    Select(browser.find_element(By.ID, "token-role")).select_by_value("member")
    browser.find_element(By.ID, "token-create").click()
    secret = el(browser, "#new-token code").text
    assert secret.startswith("tlk_")
    assert api(gw, "GET", "/v1/me", token=secret).json()["token"]["name"] == "ui made"
    shot("19-token-created-once")
    el(browser, "#new-token .btn-primary").click()
    row = wait(browser, lambda d: [r for r in d.find_elements(By.CSS_SELECTOR, "#tokens tbody tr")
                                   if "ui made" in r.text])[0]
    shot("20-tokens")
    row.find_element(By.CSS_SELECTOR, "button").click()
    dialog = el(browser, "dialog[open]")
    [b for b in dialog.find_elements(By.CSS_SELECTOR, "button") if b.text == "Revoke token"][0].click()
    wait(browser, lambda _: api(gw, "GET", "/v1/me", token=secret).status_code == 401)


def agent_by_name(d, name):
    found = [a for a in api(d, "GET", "/v1/agents").json()["data"] if a["name"] == name]
    return found[0] if found else None


def agent_saved(drv, name):
    """Waits for the agent's page after a save (its title, and the saved notice)."""
    wait_text(drv, "#agent-title", name)
    return el(drv, "#saved")


def test_websocket_agent_create_and_edit(gw, browser, shot):
    secret = "Bearer sk-ui-%s" % os.urandom(6).hex()
    sign_in(browser, gw)
    open_page(browser, gw, "#/agents", "#agents")
    browser.find_element(By.ID, "new-websocket-agent").send_keys(Keys.ENTER)  # keyboard
    dialog = el(browser, "dialog[open] #agent-form")
    assert active_id(browser) == "agent-name"
    assert not browser.find_elements(By.ID, "agent-voice-url")  # websocket fields only
    browser.find_element(By.ID, "agent-name").send_keys("ui-bot")
    browser.find_element(By.ID, "agent-url").send_keys("https://x")  # not a WebSocket URL
    click(browser, browser.find_element(By.CSS_SELECTOR, "[data-path='parameters']"))
    assert present(browser, "[data-path='parameters.']")  # an empty parameter row
    browser.switch_to.active_element.send_keys("persona")  # Add focuses the new row
    row = el(browser, "[data-path='parameters.persona']").find_element(By.XPATH, "ancestor::div[@class='row']")
    row.find_element(By.CSS_SELECTOR, "[data-part='value']").send_keys("friendly")
    click(browser, browser.find_element(By.CSS_SELECTOR, "[data-path='headers']"))
    el(browser, "[data-path='headers[0].name']").send_keys("Authorization")
    value = browser.find_element(By.CSS_SELECTOR, "[data-path='headers[0].value']")
    assert value.get_attribute("type") == "password"  # a secret: not shown while typed
    value.send_keys(secret)
    unlabeled = browser.execute_script("""
        return [...document.querySelectorAll('dialog input, dialog select')]
          .filter(e => !(e.labels && e.labels.length)).length""")
    assert unlabeled == 0
    browser.find_element(By.ID, "agent-save").click()

    # the API's error, at the field it names, with the focus there
    wait(browser, lambda d: d.find_element(By.ID, "agent-url").get_attribute("aria-invalid") == "true")
    err = field_error(browser, "agent-url")
    assert err.is_displayed() and "wss://x" in err.text
    assert active_id(browser) == "agent-url"
    assert agent_by_name(gw, "ui-bot") is None
    shot("22-agent-form-error")
    url = browser.find_element(By.ID, "agent-url")
    url.clear()
    url.send_keys("wss://bot.invalid/media")
    browser.find_element(By.ID, "agent-save").click()
    notice = agent_saved(browser, "ui-bot")
    # a warning of the save, in the saved notice (.invalid never resolves)
    assert "could not be resolved" in notice.find_element(By.CSS_SELECTOR, "li[data-field='url']").text
    a = agent_by_name(gw, "ui-bot")
    assert a["kind"] == "websocket" and a["url"] == "wss://bot.invalid/media"
    assert a["parameters"] == {"persona": "friendly"}
    assert a["headers"] == [{"name": "Authorization", "value_set": True}]
    settings = text_of(browser, "#agent-settings")
    assert "persona = friendly" in settings and "Authorization (value set, hidden)" in settings
    assert "5000 ms" in settings  # the connect timeout
    assert secret not in browser.page_source  # write-only: gone with the dialog
    shot("23-websocket-agent")

    # rename: the header is sent back without a value and keeps the stored one
    browser.find_element(By.ID, "agent-edit").click()
    el(browser, "dialog[open] #agent-form")
    assert browser.find_element(By.ID, "agent-url").get_attribute("value") == a["url"]
    assert browser.find_element(By.CSS_SELECTOR, "[data-path='parameters.persona']").get_attribute("value") == "persona"
    stored = browser.find_element(By.CSS_SELECTOR, "[data-path='headers[0].value']")
    assert stored.get_attribute("value") == "" and "keep" in stored.get_attribute("placeholder")
    name = browser.find_element(By.ID, "agent-name")
    name.clear()
    name.send_keys("ui-bot-renamed")
    browser.find_element(By.ID, "agent-save").click()
    notice = agent_saved(browser, "ui-bot-renamed")
    assert not notice.find_elements(By.CSS_SELECTOR, "li[data-field='headers']")  # nothing dropped
    a2 = api(gw, "GET", "/v1/agents/" + a["id"]).json()
    assert a2["name"] == "ui-bot-renamed"
    assert a2["headers"] == [{"name": "Authorization", "value_set": True}]
    assert a2["parameters"] == {"persona": "friendly"}
    assert "Agent saved" in text_of(browser, "#flash")

    # another host: the stored value does not follow; the notice says so
    browser.find_element(By.ID, "agent-edit").click()
    el(browser, "dialog[open] #agent-form")
    url = browser.find_element(By.ID, "agent-url")
    url.clear()
    url.send_keys("wss://other.invalid/media")
    browser.find_element(By.ID, "agent-save").click()
    wait_text(browser, "#agent-settings", "other.invalid")
    warn = el(browser, "#saved #warnings li[data-field='headers']")
    assert "Authorization" in warn.text
    assert api(gw, "GET", "/v1/agents/" + a["id"]).json()["headers"] == []
    shot("24-websocket-agent-edited-warning")
    open_page(browser, gw, "#/agents", "#agents")
    assert "wss://other.invalid/media" in text_of(browser, "#agents tr[data-id='%s']" % a["id"])


def test_twiml_agent_create_and_clear_fallback(gw, browser, shot):
    sign_in(browser, gw)
    open_page(browser, gw, "#/agents", "#agents")
    browser.find_element(By.ID, "new-twiml-agent").click()
    el(browser, "dialog[open] #agent-form[data-kind='twiml']")
    hint = text_of(browser, "#twiml-hint")
    assert "Twilio" in hint and "X-Twilio-Signature" in hint
    assert not browser.find_elements(By.ID, "agent-url")
    browser.find_element(By.ID, "agent-name").send_keys("ui-twiml")
    browser.find_element(By.ID, "agent-voice-url").send_keys("wss://bot.invalid/ws")  # the stream, not the voice URL
    Select(browser.find_element(By.ID, "agent-method")).select_by_value("GET")
    browser.find_element(By.ID, "agent-fallback-url").send_keys("https://backup.invalid/voice")
    browser.find_element(By.ID, "agent-status-callback").send_keys("https://bot.invalid/status")
    browser.find_element(By.ID, "agent-timeout").send_keys("4000")
    shot("25-twiml-agent-form")
    browser.find_element(By.ID, "agent-save").click()
    wait(browser, lambda d: d.find_element(By.ID, "agent-voice-url").get_attribute("aria-invalid") == "true")
    assert "WebSocket" in field_error(browser, "agent-voice-url").text
    voice = browser.find_element(By.ID, "agent-voice-url")
    voice.clear()
    voice.send_keys("https://bot.invalid/voice")
    browser.find_element(By.ID, "agent-save").click()
    notice = agent_saved(browser, "ui-twiml")
    assert notice.find_elements(By.CSS_SELECTOR, "li[data-field='voice_url']")
    a = agent_by_name(gw, "ui-twiml")
    assert (a["kind"], a["voice_url"], a["method"], a["timeout_ms"]) == ("twiml", "https://bot.invalid/voice", "GET", 4000)
    assert a["fallback_url"] == "https://backup.invalid/voice"
    assert a["status_callback"] == "https://bot.invalid/status"
    settings = text_of(browser, "#agent-settings")
    for v in ("TwiML", "https://bot.invalid/voice", "GET", "https://backup.invalid/voice",
              "https://bot.invalid/status", "4000 ms"):
        assert v in settings, v
    shot("26-twiml-agent")

    browser.find_element(By.ID, "agent-edit").click()
    el(browser, "dialog[open] #agent-form")
    assert Select(browser.find_element(By.ID, "agent-method")).first_selected_option.get_attribute("value") == "GET"
    fb = browser.find_element(By.ID, "agent-fallback-url")
    assert fb.get_attribute("value") == "https://backup.invalid/voice"
    fb.clear()
    browser.find_element(By.ID, "agent-save").click()
    wait(browser, lambda _: api(gw, "GET", "/v1/agents/" + a["id"]).json()["fallback_url"] is None)
    agent_saved(browser, "ui-twiml")
    wait(browser, lambda d: "backup.invalid" not in text_of(d, "#agent-settings"))
    a2 = api(gw, "GET", "/v1/agents/" + a["id"]).json()
    assert a2["status_callback"] == "https://bot.invalid/status" and a2["timeout_ms"] == 4000
    # the list's summary is the voice URL
    open_page(browser, gw, "#/agents", "#agents")
    row = text_of(browser, "#agents tr[data-id='%s']" % a["id"])
    assert "TwiML" in row and "https://bot.invalid/voice" in row


def twilio_rest_status(d, sid, token):
    """What the Twilio REST emulation answers these credentials: 404 (a call that does
    not exist) once they authenticate, 401 when they do not."""
    r = requests.get(d.url + "/2010-04-01/Accounts/%s/Calls/CA%s.json" % (sid, "0" * 32),
                     auth=(sid, token), timeout=10)
    return r.status_code


def test_twilio_credentials(gw, browser, shot):
    api(gw, "DELETE", "/v1/twilio-account")  # whatever an earlier run left
    sign_in(browser, gw)
    open_page(browser, gw, "#/agents", "#agents")
    el(browser, "#twilio-none")
    el(browser, "#twilio-issue").click()
    box = el(browser, "dialog[open] #twilio-token")
    sid, token = [c.text for c in box.find_elements(By.CSS_SELECTOR, "code")]
    assert sid.startswith("AC") and len(sid) == 34
    assert api(gw, "GET", "/v1/twilio-account").json()["account_sid"] == sid
    assert twilio_rest_status(gw, sid, token) == 404  # the token shown is the real one
    shot("27-twilio-credentials-issued")
    box.find_element(By.CSS_SELECTOR, ".actions .btn-primary").click()
    wait_text(browser, "#twilio-sid", sid)
    wait(browser, lambda d: active_id(d) == "twilio-rotate")
    assert token not in browser.page_source  # shown once
    shot("28-twilio-credentials")

    browser.find_element(By.ID, "twilio-rotate").click()
    dialog = el(browser, "dialog[open]")
    [b for b in dialog.find_elements(By.CSS_SELECTOR, "button") if b.text == "Rotate token"][0].click()
    box = el(browser, "dialog[open] #twilio-token")
    sid2, token2 = [c.text for c in box.find_elements(By.CSS_SELECTOR, "code")]
    assert sid2 == sid and token2 != token
    assert twilio_rest_status(gw, sid, token) == 401
    assert twilio_rest_status(gw, sid, token2) == 404
    box.find_element(By.CSS_SELECTOR, ".actions .btn-primary").click()
    wait(browser, lambda d: not present(d, "dialog[open]"))

    el(browser, "#twilio-revoke").click()
    dialog = el(browser, "dialog[open]")
    [b for b in dialog.find_elements(By.CSS_SELECTOR, "button") if b.text == "Revoke credentials"][0].click()
    el(browser, "#twilio-none")
    assert api(gw, "GET", "/v1/twilio-account").status_code == 404

    # the operator sees the credentials of the workspace picked in the header
    sid3 = api(gw, "POST", "/v1/twilio-account").json()["account_sid"]
    sign_in(browser, gw, gw.operator_token)
    Select(el(browser, ".ws-pick select")).select_by_value(gw.workspace_id)
    open_page(browser, gw, "#/agents", "#agents")
    wait_text(browser, "#twilio-sid", sid3)
    assert api(gw, "DELETE", "/v1/twilio-account").status_code == 204


def test_screens(gw, browser, shot):
    """The remaining main screens, for a person to look at."""
    sign_in(browser, gw)
    shot("02-numbers")
    open_page(browser, gw, "#/agents", "#agents")
    shot("21-agents")


# ---------------------------------------------------------------- performance ----

def bulk_numbers(d, n):
    """n numbers (and an event for every tenth) straight into the store file: an import
    through the API commits each one to disk, which is minutes for 10,000."""
    tmpl_id = import_api(d, "+4940000000000", label="Template", inbound="tls")
    d.stop()
    db = sqlite3.connect(os.path.join(d.data_dir, "trunkline.db"))
    row = db.execute("SELECT workspace_id, source, agent_id, outbound_json, inbound_json, "
                     "created_at FROM phone_numbers WHERE id = ?", (tmpl_id,)).fetchone()
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"

    def new_id(prefix, i):
        s, x = "", i
        for _ in range(26):
            s = alphabet[x % 32] + s
            x //= 32
        return prefix + "_" + s
    cities = ["Berlin", "Hamburg", "München", "Köln", "Frankfurt", "Stuttgart", "Leipzig",
              "Dresden", "Bremen", "Hannover"]
    rows, events = [], []
    for i in range(1, n):
        pid = new_id("pn", 10 ** 9 + i)
        rows.append((pid, row[0], "+4940%08d" % i, "%s line %d" % (cities[i % 10], i), row[1],
                     row[2], row[3], row[4], row[5] + i, row[5] + i))
        if i % 10 == 0:
            events.append((new_id("ev", 10 ** 9 + i), row[0], pid, "registration_attempt",
                           "REGISTER refused (403)", "switch to a static trunk", "{}", row[5] + i))
    with db:
        db.executemany("INSERT INTO phone_numbers (id, workspace_id, number, label, source, "
                       "agent_id, outbound_json, inbound_json, created_at, updated_at) "
                       "VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        db.executemany("INSERT INTO events (id, workspace_id, number_id, code, message, hint, "
                       "details_json, created_at) VALUES (?,?,?,?,?,?,?,?)", events)
    db.close()
    d.start()


def test_numbers_page_with_10000_numbers(tmp_path, browser, capsys):
    """Measured and printed, not asserted: time to interactive of the numbers page (the
    navigation start until the first page of 50 is rendered with agent names and badges
    and the search box is enabled) and search latency (an input event until the table shows
    the server's answer). Goals: < 300 ms and < 100 ms."""
    d = Daemon(tmp_path).start()
    try:
        bulk_numbers(d, 10000)
        total = d.api("GET", "/v1/phone-numbers", params={"q": "+4940"})
        assert total.status_code == 200 and total.json()["next_cursor"]
        sign_in(browser, d)
        tti, start, me = [], [], []
        for _ in range(7):
            browser.refresh()
            el(browser, "#numbers[data-ready]")
            t = browser.execute_script(
                "const m = n => performance.getEntriesByName(n)[0].startTime;"
                "return [m('numbers-interactive'), m('app-start'), m('signed-in')]")
            tti.append(t[0])
            start.append(t[1])
            me.append(t[2])
        rows = len(browser.find_elements(By.CSS_SELECTOR, "#numbers-body tr"))
        assert rows == 50
        search = browser.find_element(By.ID, "search")
        lat = []
        for q in ["Berlin", "line 99", "+494000", "9999", "München", "Köln line 12", "7777",
                  "Hamburg line 5", "nothing matches this", "Dresden"] * 2:
            browser.execute_script(
                "arguments[0].value = arguments[1];"
                "arguments[0].dispatchEvent(new Event('input', {bubbles: true}))", search, q)
            wait(browser, lambda drv: drv.find_element(By.ID, "numbers").get_attribute("data-searched") == q)
            lat.append(browser.execute_script(
                "const m = performance.getEntriesByName('numbers-search'); return m[m.length - 1].duration"))
        server = []
        for q in ["Berlin", "9999", "nothing matches this"]:
            r = d.api("GET", "/v1/phone-numbers", params={"q": q, "limit": 50})
            server.append(r.elapsed.total_seconds() * 1000)
        report = ("numbers page, 10,000 numbers: time to interactive median %.0f ms (min %.0f, "
                  "max %.0f over %d loads; goal < 300 ms; of which modules loaded at %.0f ms, "
                  "signed in at %.0f ms); search median %.0f ms (max %.0f over %d searches; "
                  "goal < 100 ms); API search alone %.1f-%.1f ms"
                  % (statistics.median(tti), min(tti), max(tti), len(tti),
                     statistics.median(start), statistics.median(me),
                     statistics.median(lat), max(lat), len(lat), min(server), max(server)))
        os.makedirs(SHOTS, exist_ok=True)
        with open(os.path.join(SHOTS, "perf.txt"), "w") as f:
            f.write(report + "\n" + json.dumps({"tti_ms": tti, "search_ms": lat}) + "\n")
        with capsys.disabled():
            print("\n[ui perf] " + report)
    finally:
        d.stop()
