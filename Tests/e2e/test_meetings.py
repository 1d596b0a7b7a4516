"""The worker's meetings in Chromium, at phone and desktop size: a planned time, today's list
with who is waiting, the case reference as the call's title, the citizen's page saying when
the meeting is (and opening 10 minutes before), a replaced link that shuts the old one out, a
cancelled meeting, and the .ics file for the worker's calendar."""

import tempfile
import time
from pathlib import Path

import pytest

from conftest import UI_TIMEOUT, element, wait_until, wait_state, worker_admits

SIZES = {"phone": (360, 740), "desktop": (1280, 800)}
# The list refreshes every 10 s; a loaded machine may take a few more.
LIST_TIMEOUT = 30


def sign_in(worker, server, token):
    worker.get(server.url("/worker"))
    element(worker, "token-input").send_keys(token)
    element(worker, "sign-in-button").click()
    element(worker, "today-card")


def create(worker, case_ref, minutes_from_now=None):
    """Creates a meeting through the form; the planned time is set in the browser's own time zone."""
    element(worker, "citizen-ref").send_keys(case_ref)
    if minutes_from_now is not None:
        worker.execute_script("""
            const start = new Date(Date.now() + arguments[0] * 60000);
            const pad = (n) => String(n).padStart(2, '0');
            document.getElementById('starts-at').value =
              `${start.getFullYear()}-${pad(start.getMonth() + 1)}-${pad(start.getDate())}T${pad(start.getHours())}:${pad(start.getMinutes())}`;
        """, minutes_from_now)
    element(worker, "create-meeting").click()
    return wait_until(lambda: element(worker, "invite-link").get_attribute("value"), UI_TIMEOUT, message="the invite link")


def meeting_state(worker, case_ref):
    """What the list shows for `case_ref` right now, read in one go (the list redraws itself)."""
    return worker.execute_script("""
        for (const item of document.querySelectorAll('#today-list .meeting-item, #upcoming-list .meeting-item')) {
          if (item.querySelector('.meeting-case').textContent !== arguments[0]) continue;
          return { id: item.dataset.meeting, text: item.innerText,
                   waiting: item.querySelector('.meeting-presence.waiting')?.textContent ?? null,
                   cancelled: Boolean(item.querySelector('.meeting-cancelled')) };
        }
        return null;
    """, case_ref)


def meeting_item(worker, case_ref, until=lambda state: True, message=None):
    return wait_until(lambda: (state := meeting_state(worker, case_ref)) and until(state) and state, LIST_TIMEOUT,
                      message=message or f"{case_ref} in the list")


def expected_time(driver, minutes_from_now):
    return driver.execute_script("""
        const start = new Date(Date.now() + arguments[0] * 60000);
        return new Intl.DateTimeFormat('da-DK', { hour: '2-digit', minute: '2-digit' }).format(start);
    """, minutes_from_now)


@pytest.mark.parametrize("size", SIZES)
def test_a_planned_meeting_today_from_the_list_to_the_call(shared_server, shared_worker_token, browsers, size):
    worker = browsers.open(f"worker-{size}", *SIZES[size])
    citizen = browsers.open(f"citizen-{size}", *SIZES[size])
    sign_in(worker, shared_server, shared_worker_token)
    case_ref = f"SAG-PLAN-{size}-{int(time.time())}"
    invite = create(worker, case_ref, minutes_from_now=5)
    listed = meeting_item(worker, case_ref)
    meeting_id = listed["id"]
    assert meeting_id not in listed["text"], "the list shows the case reference, never the meeting id"

    citizen.get(invite)
    sentence = element(citizen, "meeting-time").text
    clock = expected_time(citizen, 5)
    assert f"kl. {clock}" in sentence, sentence
    same_day = citizen.execute_script("const s = new Date(Date.now() + 300000); return s.getDate() === new Date().getDate();")
    if same_day:
        assert sentence.startswith("Dit møde er i dag kl."), sentence
    assert element(citizen, "join-button").is_enabled(), "it opens 10 minutes before the start"
    element(citizen, "join-button").click()

    waiting = meeting_item(worker, case_ref, lambda state: state["waiting"], "the list says the citizen is waiting")
    assert "Borgeren venter" in waiting["waiting"]
    element(worker, f"join-{meeting_id}").click()
    assert element(worker, "meeting-title").text == case_ref
    worker_admits(worker)
    wait_state(worker, ("negotiating", "connected"), timeout=60)


@pytest.mark.parametrize("size", SIZES)
def test_a_meeting_later_shows_when_it_opens_and_keeps_the_button_shut(shared_server, shared_worker_token, browsers, size):
    worker = browsers.open(f"worker-later-{size}", *SIZES[size])
    citizen = browsers.open(f"citizen-later-{size}", *SIZES[size])
    sign_in(worker, shared_server, shared_worker_token)
    invite = create(worker, f"SAG-LATER-{size}-{int(time.time())}", minutes_from_now=45)
    citizen.get(invite)
    element(citizen, "meeting-time")
    opens = element(citizen, "opens-at").text
    assert f"kl. {expected_time(citizen, 35)}" in opens, opens
    assert not element(citizen, "join-button").is_enabled()


@pytest.mark.parametrize("size", SIZES)
def test_a_replaced_link_shuts_the_old_one_out_and_a_cancelled_meeting_says_so(
        shared_server, shared_worker_token, browsers, size):
    downloads = tempfile.mkdtemp(prefix="samtalerum-ics-")
    worker = browsers.open(f"worker-cancel-{size}", *SIZES[size])
    citizen = browsers.open(f"citizen-cancel-{size}", *SIZES[size])
    worker.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
    sign_in(worker, shared_server, shared_worker_token)
    case_ref = f"SAG-LEAK-{size}-{int(time.time())}"
    old_link = create(worker, case_ref)
    meeting_id = meeting_item(worker, case_ref)["id"]
    worker.execute_script("window.confirm = () => true;")

    element(worker, f"new-link-{meeting_id}").click()
    new_link = wait_until(lambda: (value := element(worker, "invite-link").get_attribute("value")) != old_link and value,
                          UI_TIMEOUT, message="a new link")
    assert element(worker, "invite-note").text

    citizen.get(old_link)
    assert "virker ikke længere" in element(citizen, "invite-error").text
    citizen.get("about:blank")
    citizen.get(new_link)
    element(citizen, "join-button")

    element(worker, f"calendar-{meeting_id}").click()
    ics = wait_until(lambda: next(iter(Path(downloads).glob("*.ics")), None), UI_TIMEOUT, message="the .ics download")
    # Bytes, not read_text(): that would turn the CRLF line ends RFC 5545 requires into LF.
    text = wait_until(lambda: (data := ics.read_bytes().decode()).endswith("END:VCALENDAR\r\n") and data, UI_TIMEOUT,
                      message="the whole .ics")
    assert case_ref in text and "DTSTART:" in text and "invite=" not in text

    element(worker, f"cancel-{meeting_id}").click()
    meeting_item(worker, case_ref, lambda state: state["cancelled"], "the list marks it cancelled")
    citizen.refresh()
    assert "aflyst" in element(citizen, "invite-error").text
