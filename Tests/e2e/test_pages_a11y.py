"""Accessibility of every page and call state: axe-core (WCAG 2.0/2.1/2.2 A and AA rules) in
headless Chromium with no serious or critical violation; at a 360 px phone width and at 200 %
zoom of a 1280×800 window no horizontal scrolling and every control reachable on screen.

Run:  python3 -m pytest -v Tests/e2e/test_pages_a11y.py   (needs PyPI axe-selenium-python)
"""

from selenium.webdriver.common.by import By

from conftest import (
    MEDIA_TIMEOUT, UI_TIMEOUT, axe_violations, create_meeting, element, issue_token, wait_state, wait_until,
)

# (label, CSS width, CSS height, device pixels per CSS pixel). Zooming a 1280×800 window to 200 %
# makes each CSS pixel two device pixels, leaving a 640×400 CSS viewport: emulated as exactly that.
PHONE = ("360px", 360, 740, 1)
ZOOM_200 = ("200%zoom", 640, 400, 2)
VIEWPORTS = (PHONE, ZOOM_200)


def unreachable_controls(driver):
    """Enabled, visible controls that cannot be scrolled fully into the viewport (content lost
    to clipping at this size), or that stay covered by something else there (a sticky bar)."""
    return driver.execute_script("""
        const out = [];
        for (const el of document.querySelectorAll('button, input, select, textarea, a[href]')) {
          if (el.disabled || el.closest('[hidden]') || !el.getClientRects().length) continue;
          const style = getComputedStyle(el);
          if (style.visibility === 'hidden' || style.display === 'none') continue;
          el.scrollIntoView({block: 'nearest', inline: 'nearest'});
          const r = el.getBoundingClientRect();
          if (r.width === 0 || r.height === 0) continue;
          const fits = r.left >= -1 && r.right <= innerWidth + 1 && r.top >= -1 && r.bottom <= innerHeight + 1;
          const tooBig = r.width > innerWidth || r.height > innerHeight;
          // What a finger on its middle would touch (a focused field must not hide under a bar);
          // a link that wraps is touched on one of its lines, not between them.
          const box = el.getClientRects()[0];
          const cx = Math.min(Math.max((box.left + box.right) / 2, 0), innerWidth - 1);
          const cy = Math.min(Math.max((box.top + box.bottom) / 2, 0), innerHeight - 1);
          const hit = document.elementFromPoint(cx, cy);
          const covered = fits && hit !== null && hit !== el && !el.contains(hit) && !(el.labels && [...el.labels].includes(hit));
          // A script may scroll a container whose overflow is hidden; a finger or a mouse cannot.
          let clipped = false;
          for (let box = el.parentElement; box; box = box.parentElement) {
            const o = getComputedStyle(box);
            const shut = (v) => v === 'hidden' || v === 'clip';
            if ((shut(o.overflowY) && box.scrollTop > 0) || (shut(o.overflowX) && box.scrollLeft > 0)) clipped = true;
            box.scrollTop = 0;
            box.scrollLeft = 0;
          }
          if ((!fits && !tooBig) || clipped || covered) out.push(el.id || el.textContent.trim().slice(0, 30) || el.tagName);
        }
        window.scrollTo(0, 0);
        return out;""")


def overflow(driver):
    """How far the page is wider than the window (0 when nothing needs sideways scrolling)."""
    return driver.execute_script(
        "return Math.max(0, document.documentElement.scrollWidth - document.documentElement.clientWidth)")


# Delivers a `quality` push with a hint through the page's own message handler, as the server
# sends it on a weak connection: the longest hint the page has, on purpose. The page renders
# synchronously, so what follows in the same script sees the hint; a real push from the server
# may replace it a moment later, which is why each check delivers it again.
DELIVER_HINT = """
    const poor = (hint) => ({class: 'poor', mos: 2.4, hint});
    window.samtalerum.call.handle({type: 'quality', receiving: poor('weak-connection'),
                                   sending: poor('try-audio-only')});
    const h = document.getElementById('quality-hint');
    const hintShown = !!h && h.offsetHeight > 0 && h.textContent.length > 20;"""


def show_quality_hint(driver):
    wait_until(lambda: driver.execute_script(DELIVER_HINT + "return hintShown;"),
               UI_TIMEOUT, message="the quality hint on screen")


def hangup_on_screen(driver):
    """Whether "Læg på" is wholly inside a 360×740 window without scrolling, with the hint shown."""
    set_width(driver, 360, 740)
    try:
        def measure():
            shown, fits = driver.execute_script("window.scrollTo(0, 0);" + DELIVER_HINT + """
                const r = document.getElementById('hangup-button').getBoundingClientRect();
                return [hintShown, r.height > 0 && r.top >= 0 && r.bottom <= innerHeight];""")
            return (fits,) if shown else None
        return wait_until(measure, UI_TIMEOUT, message="a measurement with the quality hint shown")[0]
    finally:
        reset_width(driver)


def set_width(driver, width, height=800, scale=1):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": width < 500})


def reset_width(driver):
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


class Audit:
    def __init__(self):
        self.problems = {}
        self.states = []
        self.minor = []

    def check(self, driver, name, viewports=VIEWPORTS):
        self.states.append(name)
        everything = axe_violations(driver, serious_only=False)
        self.minor.extend(f"{name}: {v['id']} ({v['impact']})" for v in everything
                          if v["impact"] not in ("serious", "critical"))
        found = [v for v in everything if v["impact"] in ("serious", "critical")]
        if found:
            self.problems[name] = found
        for label, width, height, scale in viewports:
            set_width(driver, width, height, scale)
            extra = overflow(driver)
            if extra > 1:
                self.problems[f"{name}@{label}"] = [{"id": "horizontal-scroll", "impact": "serious",
                                                     "help": f"{extra}px wider than the window"}]
            lost = unreachable_controls(driver)
            if lost:
                self.problems[f"{name}@{label}/reach"] = [{"id": "control-out-of-reach", "impact": "serious",
                                                           "help": f"cannot be scrolled into view: {lost}"}]
        reset_width(driver)


def test_every_page_and_state_passes_axe_and_fits_small_screens(shared_server, shared_worker_token, browsers):
    audit = Audit()
    server = shared_server
    visitor = browsers.open("visitor")
    visitor.get(server.url("/"))
    element(visitor, "worker-link")
    audit.check(visitor, "landing")
    visitor.get(server.url("/join"))
    element(visitor, "invite-error")
    audit.check(visitor, "join-missing")
    visitor.get(server.url("/join#invite=not-a-real-invite"))
    element(visitor, "invite-error")
    audit.check(visitor, "join-invalid")
    visitor.get(server.url("/test"))
    element(visitor, "start-check").click()
    wait_until(lambda: visitor.execute_script("return window.samtalerumCheck.done"), 30, message="the check")
    audit.check(visitor, "test-done")

    worker = browsers.open("worker")
    worker.get(server.url("/worker"))
    element(worker, "token-input")
    audit.check(worker, "worker-signin")
    element(worker, "token-input").send_keys(shared_worker_token)
    element(worker, "sign-in-button").click()
    element(worker, "citizen-ref").send_keys("SAG-2026-0099")
    element(worker, "create-meeting").click()
    invite = wait_until(lambda: element(worker, "invite-link").get_attribute("value"), UI_TIMEOUT, message="invite")
    audit.check(worker, "worker-home-invite")
    element(worker, "guest-ref").send_keys("JC-2026-0099")
    element(worker, "invite-guest").click()
    guest_item = wait_until(lambda: worker.find_elements(By.CSS_SELECTOR, "#guest-invites li"), UI_TIMEOUT,
                            message="the guest's invite")[0]
    guest_peer = guest_item.get_attribute("data-peer")
    guest_invite = element(worker, f"guest-link-{guest_peer}").get_attribute("value")
    audit.check(worker, "worker-guest-invite")
    element(worker, "join-meeting-button").click()
    wait_state(worker, "waiting")
    audit.check(worker, "worker-waiting")

    citizen = browsers.open("citizen")
    citizen.get(invite)
    wait_state(citizen, "ready")
    audit.check(citizen, "join-welcome")
    citizen.find_element(By.CSS_SELECTOR, "#check-details summary").click()
    wait_until(lambda: citizen.execute_script("return window.samtalerumCheck && window.samtalerumCheck.done"), 30,
               message="the invite page's check")
    audit.check(citizen, "join-welcome-checked")
    element(citizen, "join-button").click()
    wait_state(citizen, "waiting-room", MEDIA_TIMEOUT)
    element(worker, "note-input").send_keys("Jeg kommer om 2 minutter")
    element(worker, "note-send").click()
    wait_until(lambda: "2 minutter" in element(citizen, "notes").text, UI_TIMEOUT, message="the note")
    audit.check(citizen, "citizen-waiting-room")
    audit.check(worker, "worker-admit-panel")

    element(worker, "admit-button").click()
    wait_state(worker, "connected", MEDIA_TIMEOUT)
    wait_state(citizen, "connected", MEDIA_TIMEOUT)
    element(citizen, "chat-input").send_keys("Hej")
    element(citizen, "chat-send").click()
    wait_until(lambda: "Hej" in element(worker, "chat-log").text, UI_TIMEOUT, message="chat")
    wait_until(lambda: worker.execute_script("return window.samtalerum.quality"), 15, message="a quality push")
    audit.check(worker, "worker-in-call")
    audit.check(citizen, "citizen-in-call")
    # A slow machine or network shows a hint whenever it likes: "Læg på" must stay on screen
    # with one shown, on both sides of a two-person call.
    for page, name in ((citizen, "citizen"), (worker, "worker")):
        show_quality_hint(page)
        assert hangup_on_screen(page), f"the {name}'s hang-up button is below the fold at 360x740 with a quality hint"
        audit.check(page, f"{name}-in-call-hint")

    # A third participant: the worker's call view with a guest waiting, then three tiles.
    guest = browsers.open("guest")
    guest.get(guest_invite)
    element(guest, "join-button").click()
    wait_state(guest, "waiting-room", MEDIA_TIMEOUT)
    element(worker, f"admit-button-{guest_peer}", MEDIA_TIMEOUT)
    audit.check(worker, "worker-in-call-guest-waiting")
    element(worker, f"admit-button-{guest_peer}").click()
    wait_state(guest, "connected", MEDIA_TIMEOUT)
    wait_until(lambda: all(len(d.find_elements(By.CSS_SELECTOR, "#remote-tiles .tile")) == 2 for d in (worker, citizen, guest)),
               MEDIA_TIMEOUT, message="two remote tiles on every page")
    audit.check(worker, "worker-mesh-call")
    audit.check(guest, "guest-mesh-call")
    # "Læg på" must be reachable without scrolling on a phone, with a hint and the presence line too.
    for page, name in ((citizen, "citizen"), (worker, "worker"), (guest, "guest")):
        show_quality_hint(page)
        assert hangup_on_screen(page), f"the {name}'s hang-up button is below the fold at 360x740 in a call of three"

    ops = browsers.open("ops")
    ops.get(server.url("/ops"))
    audit.check(ops, "ops-signin")
    element(ops, "token-input").send_keys(issue_token(server, role="ops", subject="o-a11y"))
    element(ops, "sign-in-button").click()
    wait_until(lambda: ops.find_elements(By.CSS_SELECTOR, "#sessions-body tr"), 10, message="an ops row")
    audit.check(ops, "ops-live", viewports=(PHONE,))  # the table scrolls inside its own region by design

    element(citizen, "hangup-button").click()
    wait_state(citizen, "ended")
    assert "Mødet er slut" in element(citizen, "ended-panel").text
    wait_state(worker, "peer-left")
    audit.check(citizen, "citizen-ended")
    audit.check(worker, "worker-peer-left")

    # /auditor is written in Danish only: an English choice made earlier on this device must not
    # mark it English. Its results table must not widen the page on a phone.
    auditor = browsers.open("auditor")
    auditor.get(server.url("/?lang=en"))
    element(auditor, "worker-link")
    auditor.get(server.url("/auditor"))
    element(auditor, "token-input")
    assert auditor.execute_script("return document.documentElement.lang") == "da"
    audit.check(auditor, "auditor-signin")
    element(auditor, "token-input").send_keys(issue_token(server, role="auditor", subject="a-a11y"))
    auditor.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()
    element(auditor, "purpose").send_keys("tilgængelighedstest")
    auditor.find_element(By.CSS_SELECTOR, "#query-form button[type=submit]").click()
    wait_until(lambda: auditor.find_elements(By.CSS_SELECTOR, "#results-body tr"), UI_TIMEOUT, message="an audit row")
    assert auditor.execute_script("return document.documentElement.lang") == "da"
    audit.check(auditor, "auditor-results")

    print(f"axe {visitor.execute_script('return axe.version')}: checked {len(audit.states)} states: {audit.states}")
    print("moderate/minor findings:", audit.minor or "none")
    assert not audit.problems, "\n".join(f"{state}: {v}" for state, v in audit.problems.items())
