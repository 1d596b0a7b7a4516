"""A closed mesh call of three (the mesh extension of the signalling protocol): the worker, the
citizen and a guest (a job-centre caseworker with an invite of their own), each in a separate
headless Chromium with a fake camera. Every page holds one peer connection per other
participant and must decode video from both; a guest hanging up leaves the other two talking;
the audit log shows the guest among the session's participants. Also: the citizen leaving
ends the session for all (the guest too) and coming back starts a new one of three; the
guest's dropped connection comes back by itself (both of its offerers restart ICE); and the
worker page's guest invitations with their plain-language limits.

Run:  python3 -m pytest -v Tests/e2e/test_mesh.py   (needs as test_call.py; see conftest.py)
"""

import time
from urllib.parse import urlsplit

from selenium.webdriver.common.by import By

from conftest import (
    MEDIA_TIMEOUT, UI_TIMEOUT, CuttableProxy, audit_sessions, csp_violations, element, field, frames_by_peer, hook,
    invite_guest, issue_token, wait_state, wait_until, worker_opens_meeting,
)

GUEST_REF = "JC-2026-0007"

SENDS_SCREEN_EVERYWHERE = """
const screen = window.samtalerum.call.media.screenTrack;
const tracks = window.samtalerum.pcs.map((pc) => pc.getSenders().find((s) => s.track && s.track.kind === 'video')?.track);
return Boolean(screen) && tracks.length === 2 && tracks.every((t) => t === screen);
"""


def tile_labels(driver):
    return sorted(e.text for e in driver.find_elements(By.CSS_SELECTOR, "#remote-tiles .tile-label"))


def wait_decoding_from(pages, expected, browsers, server, minimum=None, message="video from every other participant"):
    """Waits until each page decodes video on a connection to each peer id it expects
    (`expected[name]`), at least `minimum[name][peer]` frames when given."""
    def all_decoding():
        seen = {name: frames_by_peer(driver) for name, driver in pages.items()}
        for name, peers in expected.items():
            for peer in peers:
                floor = (minimum or {}).get(name, {}).get(peer, 0)
                if seen[name].get(peer, 0) <= floor:
                    return None
        return seen
    try:
        return wait_until(all_decoding, MEDIA_TIMEOUT, interval=0.5, message=message)
    except AssertionError as err:
        seen = {name: frames_by_peer(driver) for name, driver in pages.items()}
        raise AssertionError(f"{err}\nframes: {seen}\nconsoles: {browsers.all_console()}\n"
                             f"server:\n{server.log_tail()}") from None


def three_waiting(server, token, browsers, guest_url=lambda url: url):
    """The worker opens a meeting and invites a guest (API); the citizen and the guest open
    their own links and wait to be let in. Returns the pages, the guest's peer id and the meeting id."""
    worker = browsers.open("worker")
    citizen = browsers.open("citizen")
    guest = browsers.open("guest", width=390, height=844)
    citizen_invite, meeting_id = worker_opens_meeting(server, worker, token)
    invite = invite_guest(server, token, meeting_id, GUEST_REF)
    guest_peer = invite["peer"]
    assert guest_peer.startswith("guest-") and "/join#invite=" in invite["guestInviteUrl"], invite
    # The guest's link works exactly like the citizen's.
    for page, url in ((citizen, citizen_invite), (guest, guest_url(invite["guestInviteUrl"]))):
        page.get(url)
        element(page, "join-button").click()
    wait_state(citizen, "waiting-room", MEDIA_TIMEOUT)
    wait_state(guest, "waiting-room", MEDIA_TIMEOUT)
    return {"worker": worker, "citizen": citizen, "guest": guest}, guest_peer, meeting_id


def everyone_else(guest_peer):
    """Per page, the peer ids it must receive video from in the call of three."""
    return {"worker": ("citizen", guest_peer), "citizen": ("worker", guest_peer), "guest": ("worker", "citizen")}


def let_both_in(worker, guest_peer):
    element(worker, "admit-button", MEDIA_TIMEOUT).click()
    element(worker, f"admit-button-{guest_peer}", MEDIA_TIMEOUT).click()


def test_three_party_mesh_call(server, worker_token, browsers):
    pages, guest_peer, meeting_id = three_waiting(server, worker_token, browsers)
    worker, citizen, guest = pages["worker"], pages["citizen"], pages["guest"]
    assert hook(guest, "role") == "guest" and hook(guest, "peerId") == guest_peer

    # The worker sees each waiting participant with a button of its own.
    admit_citizen = element(worker, "admit-button", MEDIA_TIMEOUT)
    admit_guest = element(worker, f"admit-button-{guest_peer}", MEDIA_TIMEOUT)
    panel = element(worker, "admit-panel").text
    assert "Borgeren venter" in panel and "Gæsten venter" in panel, panel
    admit_citizen.click()
    admit_guest.click()

    expected = everyone_else(guest_peer)
    frames = wait_decoding_from(pages, expected, browsers, server)
    print(f"frames per connection: {frames}")
    for name, page in pages.items():
        wait_state(page, "connected")
        assert len(hook(page, "pcs")) == 2, (name, hook(page, "peers"))
    session_id = hook(worker, "sessionId")
    assert session_id and all(hook(page, "sessionId") == session_id for page in pages.values())
    assert tile_labels(worker) == ["Borger", "Gæst"]
    assert tile_labels(citizen) == ["Gæst", "Medarbejder"]
    assert tile_labels(guest) == ["Borger", "Medarbejder"]
    assert not worker.find_element(By.ID, "admit-panel").is_displayed()

    # Chat reaches everyone, with the sender's name.
    element(guest, "chat-input").send_keys("Hej fra jobcentret")
    element(guest, "chat-send").click()
    for page in (worker, citizen):
        wait_until(lambda p=page: "Gæst: Hej fra jobcentret" in element(p, "chat-log").text, UI_TIMEOUT,
                   message="the guest's chat line")

    # A shared screen replaces the worker's camera on every connection, and reaches both.
    element(worker, "screen-button").click()
    wait_until(lambda: worker.execute_script("return window.samtalerum.call.sharingScreen"), UI_TIMEOUT,
               message="screen sharing to start")
    wait_until(lambda: worker.execute_script(SENDS_SCREEN_EVERYWHERE), UI_TIMEOUT, message="the screen on every video sender")
    seen = {name: frames_by_peer(pages[name]).get("worker", 0) for name in ("citizen", "guest")}
    wait_decoding_from(pages, {"citizen": ("worker",), "guest": ("worker",)}, browsers, server,
                       minimum={name: {"worker": frames + 10} for name, frames in seen.items()},
                       message="the shared screen at the citizen and the guest")
    element(worker, "screen-button").click()

    # Ops staff see the guest in the live view, by place only.
    ops = browsers.open("ops")
    ops.get(server.url("/ops"))
    element(ops, "token-input").send_keys(issue_token(server, role="ops", subject="o-mesh"))
    element(ops, "sign-in-button").click()
    guests_cell = f'#sessions-body tr[data-meeting="{meeting_id}"] td[data-role="guest"]'
    wait_until(lambda: guest_peer in "".join(e.text for e in ops.find_elements(By.CSS_SELECTOR, guests_cell)),
               UI_TIMEOUT, message="the guest in the ops live view")
    assert GUEST_REF not in ops.find_element(By.TAG_NAME, "body").text, "ops must not see references"

    # The guest hangs up; the worker and the citizen go on.
    element(guest, "hangup-button").click()
    wait_state(guest, "ended")
    for page in (worker, citizen):
        wait_until(lambda p=page: [x["peer"] for x in hook(p, "peers")] in (["citizen"], ["worker"]), UI_TIMEOUT,
                   message="the guest's connection gone")
        assert "Gæsten har forladt samtalen" in element(page, "presence").text
    before = {"worker": frames_by_peer(worker).get("citizen", 0), "citizen": frames_by_peer(citizen).get("worker", 0)}
    wait_decoding_from({"worker": worker, "citizen": citizen}, {"worker": ("citizen",), "citizen": ("worker",)},
                       browsers, server, minimum={"worker": {"citizen": before["worker"] + 30},
                                                  "citizen": {"worker": before["citizen"] + 30}},
                       message="video still flowing between worker and citizen after the guest left")
    assert hook(worker, "state") == "connected" and hook(citizen, "state") == "connected"
    assert hook(worker, "sessionId") == session_id == hook(citizen, "sessionId")
    assert tile_labels(worker) == ["Borger"]

    time.sleep(0.5)
    element(worker, "hangup-button").click()
    wait_state(worker, "ended")
    # The worker's hang-up ends the meeting: the citizen's call ends with it, devices off.
    wait_state(citizen, "ended")

    for name, lines in browsers.all_console().items():
        assert not csp_violations(lines), f"{name}: {csp_violations(lines)}"

    # The audit CLI needs the store to itself (see test_call.py).
    browsers.close()
    server.stop()
    sessions = [s for s in audit_sessions(server) if field(s, "meetingId", "meeting") == meeting_id]
    print(f"audit sessions: {sessions}")
    assert len(sessions) == 1, sessions
    session = sessions[0]
    assert field(session, "sessionId", "session") == session_id, session
    assert session["endReason"] == "hangup", session
    assert GUEST_REF in (session.get("guestRefs") or []), session


def test_citizen_leaving_ends_the_session_for_all_and_coming_back_starts_a_new_one_of_three(server, worker_token, browsers):
    pages, guest_peer, _ = three_waiting(server, worker_token, browsers)
    worker, citizen, guest = pages["worker"], pages["citizen"], pages["guest"]
    let_both_in(worker, guest_peer)
    expected = everyone_else(guest_peer)
    wait_decoding_from(pages, expected, browsers, server)
    first_session = hook(worker, "sessionId")

    # Without the citizen there is no session: the guest loses the worker too, and waits.
    element(citizen, "hangup-button").click()
    wait_state(worker, "peer-left")
    wait_state(guest, "peer-left")
    assert hook(worker, "pcs") == [] and hook(guest, "pcs") == []
    assert "Borgeren har forladt samtalen. Den fortsætter, når borgeren kommer tilbage" in element(guest, "call-status").text
    assert not guest.find_elements(By.CSS_SELECTOR, "#remote-tiles .tile")

    # The citizen opens the link again: a new entry, so it waits; the guest's admission was for the
    # session that ended, so it waits too (Docs/PROTOCOL.md). The worker lets both in: all three, new session.
    citizen.refresh()
    element(citizen, "join-button").click()
    wait_state(citizen, "waiting-room", MEDIA_TIMEOUT)
    let_both_in(worker, guest_peer)
    wait_decoding_from(pages, expected, browsers, server, message="video on every connection of the new session")
    second_session = hook(worker, "sessionId")
    assert second_session and second_session != first_session
    assert all(hook(page, "sessionId") == second_session for page in pages.values())


def test_guest_connection_drop_recovers_with_ice_restarts_from_both_offerers(server, worker_token, browsers):
    """The guest's network goes away for a few seconds: the worker and the citizen (who both
    offer to the guest) name the guest in their banner, and restart ICE toward it when it is
    back; the call of three goes on in the same session."""
    proxy = CuttableProxy(server.port)
    try:
        pages, guest_peer, _ = three_waiting(server, worker_token, browsers,
                                             guest_url=lambda url: proxy.url("/join#" + urlsplit(url).fragment))
        worker, citizen, guest = pages["worker"], pages["citizen"], pages["guest"]
        let_both_in(worker, guest_peer)
        expected = everyone_else(guest_peer)
        wait_decoding_from(pages, expected, browsers, server)
        session_id = hook(worker, "sessionId")
        restarts = {name: hook(pages[name], "iceRestarts") for name in ("worker", "citizen")}

        assert proxy.cut(4) >= 1, "the guest's WebSocket did not go through the proxy"
        wait_state(guest, "reconnecting", 5)
        for page in (worker, citizen):
            wait_until(lambda p=page: hook(p, "peerReconnecting"), UI_TIMEOUT, message="peer-reconnecting for the guest")
            assert "Forbindelsen til gæsten blev afbrudt" in element(page, "peer-reconnecting").text

        wait_until(lambda: hook(guest, "resumes") >= 1, 30, interval=0.5, message="the guest's resume")
        for page in (worker, citizen):
            wait_until(lambda p=page: not hook(p, "peerReconnecting"), UI_TIMEOUT, message="peer-reconnected")
        for name in ("worker", "citizen"):
            assert hook(pages[name], "iceRestarts") > restarts[name], name
        assert hook(guest, "iceRestarts") == 0  # the guest offers to nobody

        seen = {name: frames_by_peer(page) for name, page in pages.items()}
        minimum = {name: {peer: frames + 30 for peer, frames in seen[name].items()} for name in pages}
        wait_decoding_from(pages, expected, browsers, server, minimum=minimum,
                           message="video flowing on every connection after the guest's resume")
        assert all(hook(page, "sessionId") == session_id for page in pages.values())
    finally:
        proxy.close()


def test_worker_invites_guests_and_is_told_plainly_when_the_room_is_full(shared_server, shared_worker_token, browsers):
    worker = browsers.open("worker", width=390, height=844)
    worker.get(shared_server.url("/worker"))
    element(worker, "token-input").send_keys(shared_worker_token)
    element(worker, "sign-in-button").click()
    element(worker, "citizen-ref").send_keys("SAG-2026-0050")
    element(worker, "create-meeting").click()
    wait_until(lambda: element(worker, "invite-link").get_attribute("value"), UI_TIMEOUT, message="the citizen's link")

    element(worker, "invite-guest").click()
    assert "Skriv gæstens reference" in element(worker, "guest-error").text
    for number in (1, 2):
        element(worker, "guest-ref").send_keys(f"JC-{number}")
        element(worker, "invite-guest").click()
        wait_until(lambda n=number: len(worker.find_elements(By.CSS_SELECTOR, "#guest-invites li")) == n, UI_TIMEOUT,
                   message=f"guest invite {number}")
    links = [e.get_attribute("value") for e in worker.find_elements(By.CSS_SELECTOR, "#guest-invites textarea")]
    assert len(set(links)) == 2 and all("/join#invite=" in link for link in links), links
    assert "Link til gæsten (JC-2)" in worker.find_element(By.ID, "guest-invites").text
    worker.find_element(By.CSS_SELECTOR, "#guest-invites li:last-child button").click()
    wait_until(lambda: "kopieret" in worker.find_element(By.CSS_SELECTOR, "#guest-invites li:last-child [role=status]").text
               or "Kunne ikke kopiere" in worker.find_element(By.CSS_SELECTOR, "#guest-invites li:last-child [role=status]").text,
               UI_TIMEOUT, message="the copy button's answer")

    element(worker, "guest-ref").send_keys("JC-3")
    element(worker, "invite-guest").click()
    wait_until(lambda: "Der kan højst være 4 deltagere" in element(worker, "guest-error").text, UI_TIMEOUT,
               message="the too-many-guests message")
    assert len(worker.find_elements(By.CSS_SELECTOR, "#guest-invites li")) == 2
