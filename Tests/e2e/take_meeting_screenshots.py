"""Screenshots of the worker's day and the IdP sign-in (issue #12, items 5 and 6) at desktop
(1280x800) and phone (390x844) size, from a real server, a real OpenID Connect provider and real
browsers, into Docs/screenshots/: worker-meetings-*, join-planned-*, signin-idp-*.

Run:  python3 Tests/e2e/take_meeting_screenshots.py   (SAMTALERUM_BIN as for the tests)
"""

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import conftest as e2e  # noqa: E402
from take_screenshots import OUT, SIZES, opened, shot  # noqa: E402
from test_meetings import create, meeting_item, sign_in  # noqa: E402
from test_oidc import IdentityProvider  # noqa: E402


def meetings(server, browsers, token):
    for size in SIZES:
        label = size[0]
        worker = opened(browsers, "worker", size)
        citizen = opened(browsers, "citizen", size)
        sign_in(worker, server, token)
        if label == SIZES[0][0]:
            create(worker, "SAG-2026-0107", minutes_from_now=20)
        invite = create(worker, f"SAG-2026-0042-{label}", minutes_from_now=5)
        citizen.get(invite)
        e2e.element(citizen, "meeting-time")
        shot(citizen, f"join-planned-{label}")
        e2e.element(citizen, "join-button").click()
        meeting_item(worker, f"SAG-2026-0042-{label}", lambda state: state["waiting"])
        shot(worker, f"worker-meetings-{label}")


def idp_sign_in(browsers):
    data_dir = Path(tempfile.mkdtemp(prefix="samtalerum-shots-idp-"))
    port, idp_port = e2e.free_port(), e2e.free_port()
    jwks = data_dir / "jwks.json"
    idp = IdentityProvider(idp_port, f"https://127.0.0.1:{port}/auth/callback", jwks, data_dir / "idp.log")
    server = e2e.Server(data_dir / "server", port, data_dir / "server.log", env={
        "SAMTALERUM_IDENTITY_EXTERNAL_ISSUER": idp.issuer,
        "SAMTALERUM_IDENTITY_EXTERNAL_AUDIENCE": "api://samtalerum",
        "SAMTALERUM_IDENTITY_EXTERNAL_JWKS_FILE": str(jwks),
        "SAMTALERUM_IDENTITY_SIGN_IN_CLIENT_ID": "samtalerum-test",
    })
    try:
        server.start()
        for size in SIZES:
            driver = opened(browsers, "idp", size)
            driver.get(server.url("/worker"))
            e2e.element(driver, "idp-sign-in")
            shot(driver, f"signin-idp-{size[0]}")
    finally:
        server.stop()
        idp.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="samtalerum-shots-"))
    server = e2e.Server(data_dir, e2e.free_port(), data_dir / "server.log")
    browsers = e2e.Browsers()
    try:
        server.start()
        meetings(server, browsers, e2e.issue_token(server, subject="w-screenshots"))
        idp_sign_in(browsers)
    finally:
        browsers.close()
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
