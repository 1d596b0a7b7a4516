"""One connection per place (Docs/PROTOCOL.md): a citizen who opens the link on a second device
gets in at once and waits to be let in; the first device is told in plain language, and does
not reconnect to take the place back."""
import time

from conftest import UI_TIMEOUT, create_meeting, element, hook, sign_in_worker, state, wait_state, wait_until


def test_the_link_opened_on_a_second_device_takes_the_place_and_the_first_says_why(shared_server, shared_worker_token, browsers):
    meeting = create_meeting(shared_server, shared_worker_token)
    phone = browsers.open("phone", width=390, height=844)
    phone.get(meeting["citizenInviteUrl"])
    element(phone, "join-button").click()
    wait_state(phone, "waiting-room")

    laptop = browsers.open("laptop")
    laptop.get(meeting["citizenInviteUrl"])
    element(laptop, "join-button").click()
    wait_state(laptop, "waiting-room")

    wait_state(phone, "error")
    assert hook(phone, "error") == "replaced"
    assert "Du er allerede med i mødet i et andet vindue eller på en anden enhed" in element(phone, "call-status").text

    # The worker sees one waiting citizen (the laptop) and lets it in; the phone stays out.
    worker = browsers.open("worker")
    sign_in_worker(worker, meeting["workerJoinUrl"], shared_worker_token)
    wait_until(lambda: hook(worker, "peerWaiting"), UI_TIMEOUT, message="the worker to learn the citizen waits")
    element(worker, "admit-button").click()
    wait_state(laptop, ("negotiating", "connected"), UI_TIMEOUT)
    time.sleep(2)  # long enough for a reconnect attempt, which must not happen
    assert state(phone) == "error"
    assert state(laptop) in ("negotiating", "connected")
