"""The pages around the call, in real headless Chromium against a real server: the ops live
view, the quality indicator, chat, audio-only, screen sharing, the pre-call check, the
English switch.

Run:  python3 -m pytest -v Tests/e2e/test_pages.py   (needs as test_call.py; see conftest.py)
"""

import time

import pytest

from selenium.webdriver.common.by import By

from conftest import (
    MEDIA_TIMEOUT, UI_TIMEOUT, citizen_joins, create_meeting, element, frames_decoded, hook, issue_token,
    sign_in_worker, video_stats, wait_both_decoding, wait_state, wait_until,
)


def start_call(server, token, browsers, citizen_media="camera+mic", citizen_size=(1280, 800)):
    meeting = create_meeting(server, token)
    worker = browsers.open("worker")
    citizen = browsers.open("citizen", width=citizen_size[0], height=citizen_size[1], media=citizen_media)
    sign_in_worker(worker, meeting["workerJoinUrl"], token)
    wait_state(worker, "waiting")
    citizen_joins(citizen, meeting["citizenInviteUrl"], worker)
    wait_state(worker, "connected", MEDIA_TIMEOUT)
    wait_state(citizen, "connected", MEDIA_TIMEOUT)
    return meeting, worker, citizen


def ops_row(ops, meeting_id):
    """The meeting's row as plain data, read in one go (the table is redrawn every 2 s)."""
    return ops.execute_script("""
        const row = document.querySelector(`#sessions-body tr[data-meeting="${arguments[0]}"]`);
        if (!row) return null;
        const cell = (role) => { const td = row.querySelector(`td[data-role="${role}"]`);
                                 return {text: td.innerText, quality: td.dataset.quality || null}; };
        return {state: row.dataset.state, text: row.innerText, worker: cell('worker'), citizen: cell('citizen')};
    """, meeting_id)


def test_ops_page_shows_the_live_call_without_personal_data(shared_server, shared_worker_token, browsers):
    meeting, worker, citizen = start_call(shared_server, shared_worker_token, browsers)
    ops_token = issue_token(shared_server, role="ops", subject="o-e2e")

    ops = browsers.open("ops")
    ops.get(shared_server.url("/ops"))
    element(ops, "token-input").send_keys(ops_token)
    element(ops, "sign-in-button").click()
    element(ops, "live-view")
    wait_until(lambda: ops.execute_script("return window.samtalerumOps.snapshots") >= 2, 10,
               message="two snapshots from the live stream")
    assert ops.execute_script("return window.samtalerumOps.mode") == "stream"
    assert "forbindelser" in element(ops, "health").text

    row = wait_until(lambda: (r := ops_row(ops, meeting["meetingId"])) and r["state"] == "in-call" and r, 10,
                     message="the meeting's row, in-call")
    assert "I samtale" in row["text"]
    for role in ("worker", "citizen"):
        assert "Forbundet" in row[role]["text"], row

    # The quality estimate needs a few `stats` intervals from both pages.
    row = wait_until(lambda: (r := ops_row(ops, meeting["meetingId"])) and r["worker"]["quality"]
                     and r["citizen"]["quality"] and r, 20, interval=0.5,
                     message="a quality class for both participants")
    assert "Forbindelse:" in row["text"] and "MOS" in row["text"], row
    snapshot = ops.execute_script("return window.samtalerumOps.last")
    text = ops.find_element(By.ID, "main").text
    assert "SAG-" not in text and "w-e2e" not in text and "127.0.0.1" not in text, text
    print(f"ops row: {row}\nsnapshot: {snapshot}")

    # The pages show the pushed quality with words and an icon.
    for driver in (worker, citizen):
        wait_until(lambda d=driver: hook(d, "quality"), 10, message="a quality push")
        box = element(driver, "quality")
        assert "Forbindelse:" in box.text and element(driver, "quality-icon").text

    worker.find_element(By.ID, "hangup-button").click()
    wait_until(lambda: (r := ops_row(ops, meeting["meetingId"])) is None or "Ikke med" in r["text"], 10,
               message="the worker gone from the row")


def test_precheck_page_checks_devices_signalling_and_every_relay_transport(shared_server, shared_worker_token, browsers):
    # The relay is lent only to an invite or staff token holder: the citizen's /test#invite= link.
    invite = create_meeting(shared_server, shared_worker_token)["citizenInviteUrl"].split("#invite=")[1]
    browser = browsers.open("visitor")
    browser.get(shared_server.url("/test#invite=" + invite))
    assert "Test dit udstyr" in element(browser, "test-view").text
    element(browser, "start-check").click()
    check = wait_until(lambda: browser.execute_script("return window.samtalerumCheck.done && window.samtalerumCheck"),
                       30, interval=0.5, message="the check to finish")
    print(f"check: {check}")
    results = check["results"]
    assert results["camera"] and results["microphone"] and results["signalling"], results
    assert results["udp"] and results["tcp"] and results["tls"], results
    assert check["ok"]
    assert "Alt virker" in element(browser, "check-verdict").text
    element(browser, "speaker-button").click()
    wait_until(lambda: "to toner" in element(browser, "speaker-status").text, UI_TIMEOUT, message="the speaker test")
    marks = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#check-list li")]
    assert len(marks) == 6 and all("✓ Virker" in m for m in marks), marks


@pytest.mark.parametrize("server", [["--no-turn"]], indirect=True, ids=["no-relay"])
def test_precheck_without_the_relay_says_what_it_checked_instead_of_blaming_the_network(server, browsers):
    def run_check(path):
        browser.get(server.url(path))
        element(browser, "start-check").click()
        return wait_until(lambda: browser.execute_script("return window.samtalerumCheck.done && window.samtalerumCheck"),
                          30, interval=0.5, message="the check to finish")

    invite = create_meeting(server, issue_token(server))["citizenInviteUrl"].split("#invite=")[1]
    browser = browsers.open("visitor")
    check = run_check("/test#invite=" + invite)
    results = check["results"]
    assert results["camera"] and results["microphone"] and results["signalling"], results
    assert results["udp"] is None and results["tcp"] is None and results["tls"] is None, results
    assert check["ok"], check
    verdict = element(browser, "check-verdict").text
    assert "Kamera, mikrofon og forbindelsen til Samtalerum virker" in verdict, verdict
    page = element(browser, "check-container").text
    assert "blokerer" not in page and "Noget virker ikke" not in page, page
    assert "uden relæserver" in page and "Det siger intet om dit netværk" in page, page
    marks = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#check-list li")]
    assert sum("Ikke tjekket" in m for m in marks) == 3 and sum("✓ Virker" in m for m in marks) == 3, marks

    # Without an invite the relay is not lent at all: the page says how to get the full check.
    check = run_check("/test")
    assert check["ok"] and check["results"]["udp"] is None, check
    page = element(browser, "check-container").text
    assert "Åbn testen fra dit link" in page and "blokerer" not in page, page


def remote_video_size(driver):
    return driver.execute_script("""
        const v = document.getElementById('remote-video');
        return v ? [v.videoWidth, v.videoHeight] : null;""")


def test_audio_only_chat_and_screen_sharing(shared_server, shared_worker_token, browsers):
    meeting = create_meeting(shared_server, shared_worker_token)
    worker = browsers.open("worker")
    citizen = browsers.open("citizen", width=390, height=844)
    sign_in_worker(worker, meeting["workerJoinUrl"], shared_worker_token)
    wait_state(worker, "waiting")

    # "Vis ikke mit ansigt" before joining: nothing of the citizen's camera is sent.
    citizen.get(meeting["citizenInviteUrl"])
    element(citizen, "audio-only-check").click()
    element(citizen, "join-button").click()
    element(worker, "admit-button", MEDIA_TIMEOUT).click()
    wait_until(lambda: frames_decoded(video_stats(citizen)) > 10, MEDIA_TIMEOUT, message="the worker's video at the citizen")
    wait_state(worker, "connected")
    wait_until(lambda: any(s["kind"] == "audio" and s["bytesReceived"] > 0 for s in video_stats(worker)["inbound"]),
               MEDIA_TIMEOUT, message="the citizen's audio at the worker")
    time.sleep(1.0)
    assert frames_decoded(video_stats(worker)) == 0
    assert "ikke kamera" in element(worker, "remote-placeholder").text
    assert element(citizen, "audio-only-button").get_attribute("aria-pressed") == "true"

    # Chat both ways, never through anything but the server's relay.
    element(citizen, "chat-input").send_keys("Hej, kan du høre mig?")
    element(citizen, "chat-send").click()
    wait_until(lambda: "Borger: Hej, kan du høre mig?" in element(worker, "chat-log").text, UI_TIMEOUT,
               message="the citizen's chat line at the worker")
    element(worker, "chat-input").send_keys("Ja, tydeligt.")
    element(worker, "chat-send").click()
    wait_until(lambda: "Medarbejder: Ja, tydeligt." in element(citizen, "chat-log").text, UI_TIMEOUT,
               message="the worker's chat line at the citizen")
    assert "Dig: Hej, kan du høre mig?" in element(citizen, "chat-log").text

    # The citizen shows their face after all, during the call.
    element(citizen, "audio-only-button").click()
    wait_until(lambda: frames_decoded(video_stats(worker)) > 10, MEDIA_TIMEOUT, message="the citizen's video after turning it on")

    # Audio only both ways: neither side decodes new frames, the sound goes on.
    element(worker, "audio-only-button").click()
    element(citizen, "audio-only-button").click()
    time.sleep(1.5)
    frozen = (frames_decoded(video_stats(worker)), frames_decoded(video_stats(citizen)))
    audio = [sum(s["bytesReceived"] for s in video_stats(d)["inbound"] if s["kind"] == "audio") for d in (worker, citizen)]
    time.sleep(1.5)
    assert frames_decoded(video_stats(worker)) - frozen[0] <= 2
    assert frames_decoded(video_stats(citizen)) - frozen[1] <= 2
    after = [sum(s["bytesReceived"] for s in video_stats(d)["inbound"] if s["kind"] == "audio") for d in (worker, citizen)]
    assert after[0] > audio[0] and after[1] > audio[1], (audio, after)

    # Screen sharing replaces the worker's (now absent) camera on the same sender.
    element(worker, "screen-button").click()
    wait_until(lambda: hook(worker, "call") and worker.execute_script("return window.samtalerum.call.sharingScreen"),
               UI_TIMEOUT, message="screen sharing to start")
    before = frames_decoded(video_stats(citizen))
    wait_until(lambda: frames_decoded(video_stats(citizen)) > before + 10, MEDIA_TIMEOUT,
               message="the shared screen's frames at the citizen")
    label = worker.execute_script(
        "return window.samtalerum.pc.getSenders().find(s => s.track && s.track.kind === 'video').track.label")
    print(f"screen track at the worker: {label!r}; citizen sees {remote_video_size(citizen)}")
    assert element(worker, "screen-button").get_attribute("aria-pressed") == "true"
    element(worker, "screen-button").click()
    wait_until(lambda: not worker.execute_script("return window.samtalerum.call.sharingScreen"), UI_TIMEOUT,
               message="screen sharing to stop")


def test_danish_by_default_and_english_on_request(shared_server, browsers):
    browser = browsers.open("visitor", width=390, height=844)
    browser.get(shared_server.url("/join"))
    assert "Linket mangler" in element(browser, "invite-error").text
    assert browser.execute_script("return document.documentElement.lang") == "da"
    switch = element(browser, "language-switch").find_element(By.TAG_NAME, "button")
    assert switch.text == "English"
    switch.click()
    wait_until(lambda: "Part of the link is missing" in element(browser, "invite-error").text, UI_TIMEOUT,
               message="the English text")
    assert browser.execute_script("return document.documentElement.lang") == "en"
    browser.get(shared_server.url("/test"))
    assert "Test your equipment" in element(browser, "test-view").text
    element(browser, "language-switch").find_element(By.TAG_NAME, "button").click()
    wait_until(lambda: "Test dit udstyr" in element(browser, "test-view").text, UI_TIMEOUT, message="Danish again")


def test_keyboard_only_join_with_visible_focus(shared_server, shared_worker_token, browsers):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    meeting = create_meeting(shared_server, shared_worker_token)
    worker = browsers.open("worker")
    sign_in_worker(worker, meeting["workerJoinUrl"], shared_worker_token)
    wait_state(worker, "waiting")

    citizen = browsers.open("citizen")
    citizen.get(meeting["citizenInviteUrl"])
    element(citizen, "join-button")
    wait_state(citizen, "ready")
    focused = None
    for _ in range(8):
        ActionChains(citizen).send_keys(Keys.TAB).perform()
        focused = citizen.execute_script("return document.activeElement && document.activeElement.id")
        if focused == "join-button":
            break
    assert focused == "join-button", focused
    outline = citizen.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), outline
    ActionChains(citizen).send_keys(Keys.ENTER).perform()
    wait_state(citizen, "waiting-room", MEDIA_TIMEOUT)

    admit = element(worker, "admit-button", MEDIA_TIMEOUT)
    worker.execute_script("arguments[0].focus()", admit)
    ActionChains(worker).send_keys(Keys.ENTER).perform()
    wait_state(citizen, "connected", MEDIA_TIMEOUT)
    wait_state(worker, "connected", MEDIA_TIMEOUT)


def test_english_has_every_danish_text(shared_server, browsers):
    browser = browsers.open("visitor")
    browser.get(shared_server.url("/"))
    missing = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const keys = (node, prefix = '') => Object.entries(node).flatMap(([k, v]) =>
            v && typeof v === 'object' ? keys(v, `${prefix}${k}.`) : [`${prefix}${k}`]);
        Promise.all([import('/js/i18n-da.js'), import('/js/i18n-en.js')]).then(([da, en]) => {
            const a = new Set(keys(da.texts)), b = new Set(keys(en.texts));
            done({onlyDa: [...a].filter((k) => !b.has(k)), onlyEn: [...b].filter((k) => !a.has(k)), count: a.size});
        }).catch((e) => done({error: String(e)}));""")
    assert missing.get("count", 0) > 100 and not missing["onlyDa"] and not missing["onlyEn"], missing
