"""Screenshots of the worker and citizen pages at desktop (1280x800) and phone (390x844) size,
taken from a real server and real calls, into Docs/screenshots/.

Run:  python3 Tests/e2e/take_screenshots.py   (SAMTALERUM_BIN as for test_call.py)
"""

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_call as e2e  # noqa: E402  (shares the server and browser helpers)

OUT = e2e.REPO / "Docs" / "screenshots"
SIZES = (("desktop", 1280, 800, False), ("phone", 390, 844, True))


def viewport(driver, width, height, mobile):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})


def shot(driver, name):
    time.sleep(0.8)  # let fonts, focus rings and video frames settle
    driver.save_screenshot(str(OUT / f"{name}.png"))
    print(f"wrote {OUT / name}.png")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="samtalerum-shots-"))
    server = e2e.Server(data_dir, e2e.free_port(), data_dir / "server.log")
    browsers = e2e.Browsers()
    try:
        server.start()
        token = server.cli("token", "issue", "--role", "worker", "--subject", "w-screenshots", "--ttl", "3600").split()[-1]
        for label, width, height, mobile in SIZES:
            worker = browsers.open(f"worker-{label}")
            viewport(worker, width, height, mobile)
            worker.get(server.url("/worker"))
            e2e.element(worker, "token-input").send_keys(token)
            e2e.element(worker, "sign-in-button").click()
            e2e.element(worker, "citizen-ref").send_keys("SAG-2026-0042")
            e2e.element(worker, "create-meeting").click()
            invite = e2e.wait_until(lambda: e2e.element(worker, "invite-link").get_attribute("value"), e2e.UI_TIMEOUT)
            shot(worker, f"worker-{label}")

            e2e.element(worker, "join-meeting-button").click()
            e2e.wait_state(worker, "waiting")
            citizen = browsers.open(f"citizen-{label}")
            viewport(citizen, width, height, mobile)
            citizen.get(invite)
            e2e.wait_state(citizen, "ready")
            shot(citizen, f"join-{label}")

            e2e.element(citizen, "join-button").click()
            e2e.wait_state(citizen, "connected", e2e.MEDIA_TIMEOUT)
            e2e.wait_state(worker, "connected", e2e.MEDIA_TIMEOUT)
            shot(citizen, f"call-citizen-{label}")
            shot(worker, f"call-worker-{label}")
            e2e.element(worker, "hangup-button").click()
            e2e.wait_state(citizen, "peer-left")

            invalid = browsers.open(f"invalid-{label}")
            viewport(invalid, width, height, mobile)
            invalid.get(server.url("/join#invite=not-a-real-invite"))
            e2e.element(invalid, "invite-error")
            shot(invalid, f"join-invalid-{label}")
    finally:
        browsers.close()
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
