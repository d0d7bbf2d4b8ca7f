"""INVITE sessions against the real daemon (sip/session.c through sip_test_policy), driven
by SIPp over UDP and TCP. Every check of an answer is inside the scenario (ereg with
check_it="true"), so SIPp exiting 0 is the assertion.

Session timers use TRUNKLINE_SIP_MIN_SE=2 so an interval of 2 s can be negotiated."""
import pytest

from test_sip_endpoint import needs_sipp, run_sipp, sip  # noqa: F401 (fixture)

TRANSPORTS = ["u1", "t1"]


def answer(sip, **extra):  # noqa: F811
    env = {"TRUNKLINE_SIP_TEST_POLICY": "answer", "TRUNKLINE_SIP_MIN_SE": "2"}
    env.update(extra)
    return sip(**env)


@needs_sipp
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_midcall_reinvite_update_info_options(sip, transport):  # noqa: F811
    """Hold: sendonly offer → recvonly answer (RFC 3264 §6.1), inactive → inactive,
    resume → sendrecv; UPDATE with an offer; INFO; in-dialog OPTIONS; BYE."""
    run_sipp(answer(sip), "sess_midcall.xml", transport)


@needs_sipp
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_daemon_sends_bye(sip, transport):  # noqa: F811
    run_sipp(answer(sip, TRUNKLINE_SIP_TEST_POLICY="answer-bye:1"), "sess_uas_bye.xml",
             transport)


@needs_sipp
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_session_timer_refresh(sip, transport):  # noqa: F811
    run_sipp(answer(sip), "sess_timer_refresh.xml", transport)


@needs_sipp
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_session_timer_expiry_bye(sip, transport):  # noqa: F811
    d = answer(sip)
    run_sipp(d, "sess_timer_expire.xml", transport)
    d.wait_log("session.expired")


@needs_sipp
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_session_interval_too_small_422(sip, transport):  # noqa: F811
    run_sipp(answer(sip), "sess_422.xml", transport)


@needs_sipp
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_tag_481_lower_cseq_500(sip, transport):  # noqa: F811
    run_sipp(answer(sip), "sess_481_500.xml", transport)


@needs_sipp
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_glare_491_both_ways(sip, transport):  # noqa: F811
    d = answer(sip)
    run_sipp(d, "sess_glare.xml", transport)
    d.wait_log("session.glare")
