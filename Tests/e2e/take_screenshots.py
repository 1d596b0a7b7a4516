"""Screenshots of every page and the main call states (one-to-one, audio only, and three with a guest) at
desktop (1280x800) and phone (390x844) size, taken from a real server and real calls, into Docs/screenshots/.

Run:  python3 Tests/e2e/take_screenshots.py   (SAMTALERUM_BIN as for the tests; see conftest.py)
"""

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import conftest as e2e  # noqa: E402  (shares the server and browser helpers)

OUT = e2e.REPO / "Docs" / "screenshots"
SIZES = (("desktop", 1280, 800, False), ("phone", 390, 844, True))


def viewport(driver, width, height, mobile):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})


def shot(driver, name):
    time.sleep(0.8)  # let fonts, focus rings and video frames settle
    driver.execute_script("document.activeElement && document.activeElement.blur && document.activeElement.blur();"
                          "window.scrollTo(0, 0)")
    driver.save_screenshot(str(OUT / f"{name}.png"))
    print(f"wrote {OUT / name}.png")


def opened(browsers, name, size):
    label, width, height, mobile = size
    driver = browsers.open(f"{name}-{label}", width=width, height=height)
    viewport(driver, width, height, mobile)
    return driver


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="samtalerum-shots-"))
    server = e2e.Server(data_dir, e2e.free_port(), data_dir / "server.log")
    browsers = e2e.Browsers()
    try:
        server.start()
        token = e2e.issue_token(server, subject="w-screenshots")
        ops_token = e2e.issue_token(server, role="ops", subject="o-screenshots")
        auditor_token = e2e.issue_token(server, role="auditor", subject="a-screenshots")
        for size in SIZES:
            label = size[0]
            visitor = opened(browsers, "visitor", size)
            visitor.get(server.url("/"))
            e2e.element(visitor, "worker-link")
            shot(visitor, f"landing-{label}")
            visitor.get(server.url("/test"))
            e2e.element(visitor, "start-check").click()
            e2e.wait_until(lambda: visitor.execute_script("return window.samtalerumCheck.done"), 30)
            shot(visitor, f"test-{label}")
            visitor.get(server.url("/join#invite=not-a-real-invite"))
            e2e.element(visitor, "invite-error")
            shot(visitor, f"join-invalid-{label}")

            worker = opened(browsers, "worker", size)
            worker.get(server.url("/worker"))
            e2e.element(worker, "token-input")
            shot(worker, f"worker-signin-{label}")
            e2e.element(worker, "token-input").send_keys(token)
            e2e.element(worker, "sign-in-button").click()
            e2e.element(worker, "citizen-ref").send_keys("SAG-2026-0042")
            e2e.element(worker, "create-meeting").click()
            invite = e2e.wait_until(lambda: e2e.element(worker, "invite-link").get_attribute("value"), e2e.UI_TIMEOUT)
            shot(worker, f"worker-{label}")
            e2e.element(worker, "join-meeting-button").click()
            e2e.wait_state(worker, "waiting")

            citizen = opened(browsers, "citizen", size)
            citizen.get(invite)
            e2e.wait_state(citizen, "ready")
            shot(citizen, f"join-{label}")
            citizen.find_element(e2e.By.CSS_SELECTOR, "#check-details summary").click()
            e2e.wait_until(lambda: citizen.execute_script("return window.samtalerumCheck && window.samtalerumCheck.done"), 30)
            shot(citizen, f"join-check-{label}")

            e2e.element(citizen, "join-button").click()
            e2e.wait_state(citizen, "waiting-room", e2e.MEDIA_TIMEOUT)
            e2e.element(worker, "note-input").send_keys("Jeg er 5 minutter forsinket")
            send = e2e.element(worker, "note-send")
            # ChromeDriver scrolls a button only to the window's edge, under the sticky call buttons.
            worker.execute_script("arguments[0].scrollIntoView({block: 'nearest'})", send)
            send.click()
            e2e.wait_until(lambda: "forsinket" in e2e.element(citizen, "notes").text, e2e.UI_TIMEOUT)
            shot(citizen, f"waiting-room-citizen-{label}")
            shot(worker, f"waiting-room-worker-{label}")

            e2e.element(worker, "admit-button").click()
            e2e.wait_state(citizen, "connected", e2e.MEDIA_TIMEOUT)
            e2e.wait_state(worker, "connected", e2e.MEDIA_TIMEOUT)
            e2e.element(citizen, "chat-input").send_keys("Hej! Jeg kan se dig.")
            e2e.element(citizen, "chat-send").click()
            e2e.wait_until(lambda: worker.execute_script("return window.samtalerum.quality"), 15)
            shot(citizen, f"call-citizen-{label}")
            shot(worker, f"call-worker-{label}")
            # "Vis ikke mit ansigt": the camera is released and the worker sees why there is no picture.
            e2e.element(citizen, "audio-only-button").click()
            e2e.wait_until(lambda: worker.find_element(e2e.By.ID, "remote-placeholder").is_displayed(), e2e.MEDIA_TIMEOUT)
            shot(citizen, f"call-citizen-audio-only-{label}")
            shot(worker, f"call-worker-audio-only-{label}")
            e2e.element(citizen, "audio-only-button").click()
            e2e.wait_until(lambda: not worker.find_element(e2e.By.ID, "remote-placeholder").is_displayed(), e2e.MEDIA_TIMEOUT)

            # A third participant: the worker invites a job-centre caseworker from the call.
            e2e.element(worker, "guest-ref").send_keys("JC-2026-0007")
            e2e.element(worker, "invite-guest").click()
            guest_link = e2e.wait_until(
                lambda: worker.find_elements(e2e.By.CSS_SELECTOR, "#guest-invites textarea"), e2e.UI_TIMEOUT)[0]
            guest_invite = guest_link.get_attribute("value")
            guest_peer = guest_link.get_attribute("id").removeprefix("guest-link-")
            guest = opened(browsers, "guest", size)
            guest.get(guest_invite)
            e2e.wait_state(guest, "ready")
            e2e.element(guest, "join-button").click()
            e2e.wait_state(guest, "waiting-room", e2e.MEDIA_TIMEOUT)
            e2e.element(worker, f"admit-button-{guest_peer}").click()
            e2e.wait_until(lambda: all(len(d.execute_script("return window.samtalerum.pcs")) == 2
                                       for d in (worker, citizen, guest)), e2e.MEDIA_TIMEOUT)
            e2e.wait_state(guest, "connected", e2e.MEDIA_TIMEOUT)
            time.sleep(2)  # frames on every tile
            shot(worker, f"call-three-worker-{label}")
            shot(guest, f"call-three-guest-{label}")
            e2e.element(guest, "hangup-button").click()
            e2e.wait_state(guest, "ended")

            ops = opened(browsers, "ops", size)
            ops.get(server.url("/ops"))
            e2e.element(ops, "token-input").send_keys(ops_token)
            e2e.element(ops, "sign-in-button").click()
            e2e.wait_until(lambda: ops.find_elements(e2e.By.CSS_SELECTOR, "#sessions-body td[data-quality]"), 20)
            shot(ops, f"ops-{label}")

            e2e.element(citizen, "hangup-button").click()
            e2e.wait_state(citizen, "ended")
            e2e.wait_state(worker, "peer-left")
            shot(citizen, f"ended-citizen-{label}")
            e2e.element(worker, "hangup-button").click()

            auditor = opened(browsers, "auditor", size)
            auditor.get(server.url("/auditor"))
            e2e.element(auditor, "token-input").send_keys(auditor_token)
            auditor.find_element(e2e.By.CSS_SELECTOR, "#signin-form button[type=submit]").click()
            e2e.element(auditor, "purpose").send_keys("klage 2026/17")
            auditor.find_element(e2e.By.CSS_SELECTOR, "#query-form button[type=submit]").click()
            e2e.wait_until(lambda: auditor.find_elements(e2e.By.CSS_SELECTOR, "#results-body tr"), e2e.UI_TIMEOUT)
            auditor.execute_script("document.getElementById('results-title').scrollIntoView()")
            time.sleep(0.8)
            auditor.save_screenshot(str(OUT / f"auditor-{label}.png"))
            print(f"wrote {OUT}/auditor-{label}.png")
            browsers.close()
    finally:
        browsers.close()
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        if "folder" in e2e._staged:
            shutil.rmtree(e2e._staged["folder"], ignore_errors=True)


if __name__ == "__main__":
    main()
