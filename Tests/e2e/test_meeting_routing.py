"""The pages name their meeting in the signalling URL (`/ws?meeting=<id>`), so a load balancer in
front of several nodes can send every connection of a meeting to the node holding its room
(issue #14). The worker's page knows its meeting; the citizen's page reads it from the invite.
A reconnection after a dropped connection uses the same URL (the balancer then picks a node
that is alive)."""

from urllib.parse import urlsplit

from conftest import CuttableProxy, citizen_joins, hook, wait_state, wait_until, worker_opens_meeting

SOCKET_URL = "return window.samtalerum && window.samtalerum.call && window.samtalerum.call.ws ? window.samtalerum.call.ws.url : null"


def socket_url(driver):
    return driver.execute_script(SOCKET_URL)


def test_both_pages_name_their_meeting_in_the_socket_url_also_after_a_drop(server, worker_token, browsers):
    proxy = CuttableProxy(server.port)
    try:
        worker = browsers.open("worker")
        citizen = browsers.open("citizen")
        invite_url, meeting_id = worker_opens_meeting(server, worker, worker_token)
        citizen_joins(citizen, proxy.url("/join#" + urlsplit(invite_url).fragment), worker)
        wait_state(worker, "connected")
        wait_state(citizen, "connected")

        wanted = f"/ws?meeting={meeting_id}"
        assert socket_url(worker).endswith(wanted), socket_url(worker)
        assert socket_url(citizen).endswith(wanted), socket_url(citizen)

        resumes = hook(citizen, "resumes")
        assert proxy.cut(3) >= 1, "the citizen's WebSocket did not go through the proxy"
        wait_state(citizen, "reconnecting", 5)
        wait_until(lambda: hook(citizen, "resumes") > resumes, 30, interval=0.5, message="the citizen's resume")
        assert socket_url(citizen) == proxy.url(wanted).replace("https:", "wss:"), socket_url(citizen)
        wait_state(citizen, "connected")
    finally:
        proxy.close()
