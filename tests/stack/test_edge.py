"""The edge, through HAProxy as a client on the network meets it: internal paths in every spelling, forwarded
headers from clients and from a trusted front, basic-auth guessing, slow and chunked bodies, headers on what
HAProxy and Flower answer, the cache kept apart from the broker."""

import contextlib
import http.client
import os
import re
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from tests.helpers import admin_session, wait_for
from tools.ports import Ports, free_ports
from tools.stack import START, Stack

pytestmark = [
    pytest.mark.stack,
    # The TLS front's certificate is made by the test itself.
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

METRICS_SPELLINGS = [
    "/metrics",
    "/%6detrics",
    "/metric%73",
    "/%6D%65%74%72%69%63%73",
    "/./metrics",
    "//metrics",
    "/x/../metrics",
    "/%2e/metrics",
    "/x/%2E%2E/metrics",
    "/metrics%2f",
    "/%2fmetrics",
    "/metrics?x=1",
    "/./metrics/../metrics",
]
FLOWER_SPELLINGS = [
    "/flower/metrics",
    "/flower/healthcheck",
    "/flower/%6detrics",
    "/flower//metrics",
    "/flower/./healthcheck",
    "/flower/x/../metrics",
    "/flower/healthchec%6b",
    "/x/../flower/metrics",
    "//flower/healthcheck",
    "/flower/%2e/metrics",
]


def raw_get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """A GET with the path exactly as given (requests would resolve the dot segments itself)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


@pytest.mark.parametrize("path", METRICS_SPELLINGS + FLOWER_SPELLINGS)
def test_no_spelling_of_an_internal_path_passes_the_public_front(stack, path):
    status, body = raw_get(stack.ports.front, path)
    assert status in (400, 404), (status, body[:200])
    assert "dashboard_computations" not in body and "flower_" not in body


def test_internal_paths_are_served_on_the_monitoring_listener_only(stack):
    monitor = f"http://127.0.0.1:{stack.ports.monitor}"
    assert "dashboard_computations_in_flight" in requests.get(f"{monitor}/metrics", timeout=10).text
    # A replica reached directly, by a client of this machine, is no monitoring listener.
    status, _ = raw_get(stack.ports.web[0], "/metrics", {"X-Dashboard-Listener": "monitoring"})
    assert status == 404


def test_a_local_process_on_haproxys_address_cannot_pass_as_haproxy(stack):
    """The replicas trust 127.0.0.2, which any local user can bind: without HAProxy's secret its headers are
    nothing."""
    direct = http.client.HTTPConnection("127.0.0.1", stack.ports.web[0], timeout=10, source_address=("127.0.0.2", 0))
    try:
        direct.request("GET", "/metrics", headers={"X-Dashboard-Listener": "monitoring"})
        assert direct.getresponse().status == 404
    finally:
        direct.close()


def cancel_through(url: str, headers: dict[str, str], **request_options: object) -> None:
    """Submits a long computation and cancels it through the API with `headers`. A connection for each request:
    uWSGI, reached directly, closes after each answer without saying so, and a reused connection would be reset."""
    cookies = requests.get(f"{url}/", timeout=10, **request_options).cookies
    token = cookies["csrftoken"]
    origin = {"Referer": f"{url}/", "Origin": url}
    submitted = requests.post(
        f"{url}/computations/",
        headers={"HX-Request": "true", **origin},
        cookies=cookies,
        timeout=10,
        data={"csrfmiddlewaretoken": token, "operation": "add", "x": "1", "y": "2", "work_seconds": "30"},
        **request_options,
    )
    pk = int(re.search(r'href="/computations/(\d+)/"', submitted.text).group(1))
    cancelled = requests.post(
        f"{url}/api/computations/{pk}/cancel",
        cookies=cookies,
        timeout=10,
        **request_options,
        headers={"X-CSRFToken": token, **origin, **headers},
    )
    assert cancelled.status_code == 200, cancelled.text


def audited_address(admin: requests.Session, url: str, **request_options: object) -> str:
    """The client address of the newest entry of the audit trail, as the admin site lists it."""
    page = admin.get(f"{url}/admin/tasks/auditentry/", timeout=10, **request_options).text
    addresses = re.findall(r'<td class="field-address">([^<]*)</td>', page)
    assert addresses, page[-2000:]
    return addresses[0]


def test_a_client_cannot_forge_its_address_or_scheme_through_the_front_or_a_replica(stack):
    admin, _ = admin_session(stack.url, stack.environment)
    forged = {"X-Forwarded-For": "203.0.113.50", "X-Forwarded-Proto": "https"}
    cancel_through(stack.url, forged)
    assert audited_address(admin, stack.url) == "127.0.0.1"
    replica = f"http://127.0.0.1:{stack.ports.web[0]}"
    cancel_through(replica, forged)
    assert audited_address(admin, stack.url) == "127.0.0.1"


def test_forwarded_headers_spelled_with_underscores_are_dropped_at_the_front(stack):
    """WSGI reads X_Forwarded_Proto as X-Forwarded-Proto: HAProxy drops such names, so neither the scheme (CSRF would
    then ask for a Referer, as it does over HTTPS) nor the address can be forged by spelling."""
    session = requests.Session()
    session.get(f"{stack.url}/", timeout=10)
    answer = session.post(
        f"{stack.url}/theme/",
        data={"csrfmiddlewaretoken": session.cookies["csrftoken"], "theme": "dark", "next": "/"},
        headers={"X_Forwarded_Proto": "https"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 303, answer.text[:300]
    admin, _ = admin_session(stack.url, stack.environment)
    cancel_through(stack.url, {"X_Forwarded_For": "203.0.113.50"})
    assert audited_address(admin, stack.url) == "127.0.0.1"


@pytest.fixture(scope="module")
def https_replicas(stack) -> Iterator[Stack]:
    """The production setting, HTTPS on, in two replicas behind an HAProxy of the stack's configuration that trusts
    a front on 127.0.0.1 (HAPROXY_TRUSTED_FRONTS)."""
    environment = {**stack.environment, "HTTPS": "true", "HAPROXY_TRUSTED_FRONTS": "127.0.0.1/32"}
    replicas = Stack(environment, Ports.free(), output=stack.output)
    try:
        replicas.start("web1", "web2", "haproxy")
        wait_for(lambda: {"web/web1", "web/web2"} <= replicas.servers_up(), timeout=60)
        yield replicas
    finally:
        replicas.stop()


@contextlib.contextmanager
def tls_terminator(directory: Path, backend_port: int) -> Iterator[str]:
    """A second HAProxy that ends TLS in front of `backend_port` and says which client it saw (198.51.100.20, as a
    load balancer would) and that it spoke HTTPS; yields its https:// URL."""
    certificate = directory / "edge.pem"
    if not certificate.exists():
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                directory / "key.pem",
                "-out",
                directory / "cert.pem",
            ],
            check=True,
            capture_output=True,
        )
        certificate.write_bytes((directory / "cert.pem").read_bytes() + (directory / "key.pem").read_bytes())
    (port,) = free_ports(1)
    config = directory / f"tls-{port}.cfg"
    config.write_text(f"""
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 40s
frontend tls
    bind 127.0.0.1:{port} ssl crt {certificate}
    http-request set-header X-Forwarded-For 198.51.100.20
    http-request set-header X-Forwarded-Proto https
    default_backend dashboard
backend dashboard
    server haproxy 127.0.0.1:{backend_port}
""")
    process = subprocess.Popen(
        ["/usr/sbin/haproxy", "-db", "-f", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"https://127.0.0.1:{port}"
    try:
        wait_for(lambda: _status(f"{url}/healthz", verify=False) == 200, timeout=20)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_behind_a_trusted_tls_front_pages_answer_and_its_client_address_is_kept(
    stack, https_replicas, tmp_path_factory
):
    with tls_terminator(tmp_path_factory.mktemp("tls"), https_replicas.ports.front) as url:
        page = requests.get(f"{url}/", verify=False, timeout=10, allow_redirects=False)
        assert page.status_code == 200, "no redirect to https: the front's X-Forwarded-Proto was kept"
        assert "Secure" in page.headers["Set-Cookie"]
        assert "max-age=31536000" in page.headers["Strict-Transport-Security"]
        admin, _ = admin_session(url, stack.environment, verify=False)
        cancel_through(url, {"X-Forwarded-For": "203.0.113.66"}, verify=False)
        assert audited_address(admin, url, verify=False) == "198.51.100.20"


def test_a_front_that_is_not_trusted_has_its_forwarded_headers_overwritten(https_replicas, tmp_path_factory):
    """The same replicas behind an HAProxy that trusts no front: whoever claims https is sent to https, forever
    behind a TLS terminator it was not told about (so HAPROXY_TRUSTED_FRONTS must name it)."""
    with second_haproxy(https_replicas, HAPROXY_TRUSTED_FRONTS="") as front:
        claimed = requests.get(
            f"http://127.0.0.1:{front}/", headers={"X-Forwarded-Proto": "https"}, timeout=10, allow_redirects=False
        )
        assert claimed.status_code == 301 and claimed.headers["Location"].startswith("https://")
        with tls_terminator(tmp_path_factory.mktemp("tls"), front) as url:
            page = requests.get(f"{url}/", verify=False, timeout=10, allow_redirects=False)
            assert page.status_code == 301


@contextlib.contextmanager
def second_haproxy(stack: Stack, **environment: str) -> Iterator[int]:
    """Another HAProxy with the stack's configuration in front of the stack's replicas; yields its port."""
    front, monitor = free_ports(2)
    process = subprocess.Popen(
        [START / "haproxy"],
        env={
            **stack.environment,
            "HAPROXY_BIND": f"127.0.0.1:{front}",
            "HAPROXY_MONITOR_BIND": f"127.0.0.1:{monitor}",
            **environment,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _status(f"http://127.0.0.1:{front}/healthz") == 200, timeout=20)
        yield front
    finally:
        process.terminate()
        process.wait(timeout=20)


def _status(url: str, **options: object) -> int | None:
    try:
        return requests.get(url, timeout=5, **options).status_code
    except requests.RequestException:
        return None


@pytest.mark.parametrize(
    "path, user, password",
    [
        ("/haproxy/stats", "STATS_USER", "STATS_PASSWORD"),
        ("/flower/", "FLOWER_USER", "FLOWER_PASSWORD"),
    ],
)
def test_guessing_a_basic_auth_password_is_slowed_down(stack, path, user, password):
    with second_haproxy(stack, LOGIN_RATE_LIMIT="3/m") as front:
        url = f"http://127.0.0.1:{front}{path}"
        right = (stack.environment[user], stack.environment[password])
        assert requests.get(url, auth=right, timeout=10).status_code == 200, "right ones never count"
        guesses = [requests.get(url, auth=(right[0], f"guess-{n}"), timeout=10).status_code for n in range(3)]
        refused = requests.get(url, auth=right, timeout=10)
        assert guesses == [401, 401, 401]
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
        assert requests.get(f"http://127.0.0.1:{front}/healthz", timeout=10).status_code == 200, "the rest is open"


def test_a_slow_or_truncated_body_holds_no_replica_thread(stack):
    """Twenty clients each announce a 1,000-byte body and send 10 bytes: HAProxy waits for them (and gives up
    after its request timeout), the replicas' 16 threads serve everyone else meanwhile."""
    stalled = []
    for _ in range(20):
        client = socket.create_connection(("127.0.0.1", stack.ports.front))
        client.sendall(b"POST /computations/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        stalled.append(client)
    try:
        started = time.monotonic()
        answers = [requests.get(f"{stack.url}/healthz", timeout=10).status_code for _ in range(20)]
        served_in = time.monotonic() - started
        for client in stalled:
            client.settimeout(15)
            assert client.recv(100).startswith(b"HTTP/1.1 408"), "HAProxy ends the wait"
    finally:
        for client in stalled:
            client.close()
    assert answers == [200] * 20 and served_in < 3, served_in


@contextlib.contextmanager
def front_of_its_own(stack: Stack, **variables: str) -> Iterator[Stack]:
    """HAProxy and two replicas of the stack's configuration (and `variables`) on ports of their own, for a test
    that attacks them."""
    separate = Stack({**stack.environment, **variables}, Ports.free(), output=stack.output)
    try:
        separate.start("web1", "web2", "haproxy")
        wait_for(lambda: {"web/web1", "web/web2"} <= separate.servers_up(), timeout=60)
        yield separate
    finally:
        separate.stop()


def test_one_address_holds_at_most_its_share_of_connections(stack):
    with front_of_its_own(stack, HAPROXY_CONNECTIONS_PER_ADDRESS="4") as separate:
        # HAProxy's threads accept and count connections each on its own, and idle ones end after its request
        # timeout (5 s): while four held connections are all counted, a fifth is closed at once, unanswered. A
        # fifth let in meanwhile (one of the four not yet counted) waits for a request: the round starts over.
        wait_for(lambda: the_cap_holds(separate.ports.front), timeout=30, interval=0.5)


def the_cap_holds(front: int) -> bool:
    """With four connections of 127.0.0.1 held: a fifth is refused at once, and another address is let in."""
    held = [socket.create_connection(("127.0.0.1", front)) for _ in range(4)]
    try:
        if not any(refused_at_once(front) for _ in range(3)):
            return False
        other = http.client.HTTPConnection("127.0.0.1", front, timeout=10, source_address=("127.0.0.3", 0))
        other.request("GET", "/healthz")
        assert other.getresponse().status == 200, "another address is let in"
        return True
    finally:
        for connection in held:
            connection.close()


def refused_at_once(front: int) -> bool:
    """Whether a new connection is closed (or reset) within a second, unanswered."""
    with socket.create_connection(("127.0.0.1", front)) as one_more:
        one_more.settimeout(1)
        try:
            return one_more.recv(100) == b""
        except ConnectionResetError:  # the usual answer to a refused connection
            return True
        except TimeoutError:  # accepted: it waits for a request
            return False


def test_one_clients_slow_large_bodies_hold_no_replica_and_everyone_else_is_served(stack):
    """The second audit's attack: 16 connections from one address each announce a 100,000-byte body, send 17,000
    bytes at once and then one byte every 2 s. HAProxy holds each whole body before a replica sees it, and ends
    the wait after its request timeout (408); a client of another address is served all along."""
    with front_of_its_own(stack) as separate:
        answered, statuses, slowest = slow_large_bodies(separate.ports.front)
    assert set(statuses) == {200} and slowest < 2, (Counter(statuses), slowest)
    assert len(answered) == 16 and all(answer.startswith(b"HTTP/1.1 408") for answer in answered.values()), answered
    # A replica reached directly waits seconds at most for a body that stops coming.
    direct = socket.create_connection(("127.0.0.1", stack.ports.web[0]))
    direct.sendall(b"POST /theme/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n" + b"x" * 17_000)
    direct.settimeout(10)
    started = time.monotonic()
    with contextlib.suppress(ConnectionResetError):
        direct.recv(100)
    assert time.monotonic() - started < 8
    direct.close()


def slow_large_bodies(front: int) -> tuple[dict[int, bytes], list[int | str], float]:
    """The attack for 20 s, with a GET from 127.0.0.3 every quarter of a second: what each attacking connection was
    answered, the GETs' statuses and the slowest GET's seconds."""
    head = (
        b"POST /theme/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 100000\r\n\r\n"
    )
    attackers = []
    for _ in range(16):
        attacker = socket.create_connection(("127.0.0.1", front))
        attacker.sendall(head + b"x" * 17_000)
        attacker.setblocking(False)
        attackers.append(attacker)
    answered: dict[int, bytes] = {}
    statuses: list[int | str] = []
    slowest = 0.0
    started = dripped = time.monotonic()
    try:
        while time.monotonic() - started < 20:
            for n, attacker in enumerate(attackers):
                if n not in answered:
                    with contextlib.suppress(BlockingIOError):
                        answered[n] = attacker.recv(100) or b"closed"
            if time.monotonic() - dripped >= 2:
                dripped = time.monotonic()
                for n, attacker in enumerate(attackers):
                    with contextlib.suppress(OSError):
                        if n not in answered:
                            attacker.send(b"x")
            asked = time.monotonic()
            other = http.client.HTTPConnection("127.0.0.1", front, timeout=10, source_address=("127.0.0.3", 0))
            try:
                other.request("GET", "/")
                statuses.append(other.getresponse().status)
            except OSError as error:
                statuses.append(repr(error))
            finally:
                other.close()
            slowest = max(slowest, time.monotonic() - asked)
            time.sleep(0.25)
    finally:
        for attacker in attackers:
            attacker.close()
    return answered, statuses, slowest


def test_a_chunked_body_is_refused_with_the_reason(stack):
    def chunks() -> Iterator[bytes]:
        yield b"operation=add&x=1&y=2"

    answer = requests.post(f"{stack.url}/computations/", data=chunks(), timeout=10)
    assert answer.status_code == 411 and "Content-Length" in answer.text


def test_flower_the_stats_page_and_haproxys_own_answers_cannot_be_framed(stack):
    flower = (stack.environment["FLOWER_USER"], stack.environment["FLOWER_PASSWORD"])
    stats = (stack.environment["STATS_USER"], stack.environment["STATS_PASSWORD"])
    answers = {
        "flower": requests.get(f"{stack.url}/flower/", auth=flower, timeout=10),
        "flower 401": requests.get(f"{stack.url}/flower/", timeout=10),
        "stats": requests.get(f"{stack.url}/haproxy/stats", auth=stats, timeout=10),
        "413": requests.post(f"{stack.url}/computations/", data=b"x" * (256 * 1024 + 1), timeout=10),
        "404": requests.get(f"{stack.url}/metrics", timeout=10),
    }
    for name, answer in answers.items():
        assert answer.headers["X-Frame-Options"] == "DENY", name
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"], name
        assert answer.headers["X-Content-Type-Options"] == "nosniff", name
    assert answers["flower"].status_code == 200 and answers["flower 401"].status_code == 401
    dashboard = requests.get(f"{stack.url}/", timeout=10)
    assert "script-src 'self'" in dashboard.headers["Content-Security-Policy"], "the dashboard keeps its own policy"


def test_flowers_password_is_not_on_any_command_line(stack):
    password = stack.environment["FLOWER_PASSWORD"].encode()
    flower = stack.processes["flower"].pid
    assert b"flower" in Path(f"/proc/{flower}/cmdline").read_bytes()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            assert password not in cmdline.read_bytes(), cmdline


def test_the_cache_has_a_bounded_server_of_its_own_and_filling_it_refuses_no_work(stack):
    cache = redis.Redis.from_url(stack.environment["CACHE_URL"])
    broker = redis.Redis.from_url(stack.environment["REDIS_URL"])
    assert cache.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
    bound = int(cache.config_get("maxmemory")["maxmemory"])
    assert 0 < bound <= 256 * 1024 * 1024
    assert cache.connection_pool.connection_kwargs["port"] != broker.connection_pool.connection_kwargs["port"]
    junk = os.urandom(1024 * 1024)
    for start in range(0, 2 * bound // len(junk), 16):
        with cache.pipeline(transaction=False) as pipe:
            for n in range(start, start + 16):
                pipe.set(f"junk:{n}", junk)
            pipe.execute()
    assert int(cache.info("memory")["used_memory"]) <= bound * 1.1
    assert cache.info("stats")["evicted_keys"] > 0
    session = requests.Session()
    session.get(f"{stack.url}/", timeout=10)
    token = session.cookies["csrftoken"]
    answer = session.post(
        f"{stack.url}/computations/",
        headers={"HX-Request": "true"},
        timeout=10,
        data={"csrfmiddlewaretoken": token, "operation": "add", "x": "2", "y": "3"},
    )
    pk = int(re.search(r'href="/computations/(\d+)/"', answer.text).group(1))

    def ended() -> dict | None:
        data = requests.get(f"{stack.url}/api/computations/{pk}", timeout=10).json()
        return data if data["status"] == "succeeded" else None

    assert wait_for(ended, timeout=30)["result"] == "5"
