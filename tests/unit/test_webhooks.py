"""Webhooks without a server: the Standard Webhooks signature, what a URL may be, the hosts and addresses a delivery
may go to, and when a failed attempt is tried again."""

import datetime
import ipaddress
import json

import pytest
from django.conf import settings as configured

from tasks.models import WebhookDelivery
from tasks.webhooks import delivering, destinations, posting, signing

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NOW = 1_800_000_000


def test_the_signature_is_standard_webhooks_own_example():
    """The specification's reference libraries test with this secret, message and signature."""
    signature = signing.sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_signed_body_verifies_with_its_secret_only_and_unchanged():
    body = json.dumps({"type": "computation.ended", "data": {"id": 7}}).encode()
    headers = signing.headers(SECRET, "5b1c7e4e-2f0d-4f3e-9b0a-0f6d3c2b1a00", body, timestamp=NOW)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert signing.verify(SECRET, headers, body, now=NOW + 10)
    assert signing.verify(SECRET, {name.upper(): value for name, value in headers.items()}, body, now=NOW)
    assert not signing.verify(signing.new_secret(), headers, body, now=NOW), "another secret"
    assert not signing.verify(SECRET, headers, body.replace(b"7", b"8"), now=NOW), "another body"
    assert not signing.verify(SECRET, {**headers, "webhook-id": "another"}, body, now=NOW), "another id"
    assert not signing.verify(SECRET, {**headers, "webhook-timestamp": str(NOW + 1)}, body, now=NOW), "another time"


def test_an_old_signature_is_a_replay():
    body = b"{}"
    headers = signing.headers(SECRET, "an-id", body, timestamp=NOW)
    assert signing.verify(SECRET, headers, body, now=NOW + signing.TOLERANCE_SECONDS)
    assert not signing.verify(SECRET, headers, body, now=NOW + signing.TOLERANCE_SECONDS + 1)
    assert not signing.verify(SECRET, headers, body, now=NOW - signing.TOLERANCE_SECONDS - 1)


def test_one_matching_signature_of_several_is_enough_and_none_is_not():
    body = b"{}"
    headers = signing.headers(SECRET, "an-id", body, timestamp=NOW)
    rotated = f"v1,{'A' * 44} {headers['webhook-signature']}"
    assert signing.verify(SECRET, {**headers, "webhook-signature": rotated}, body, now=NOW)
    assert not signing.verify(SECRET, {**headers, "webhook-signature": ""}, body, now=NOW)
    assert not signing.verify(SECRET, {"webhook-signature": headers["webhook-signature"]}, body, now=NOW)


def test_a_new_secret_is_standard_webhooks_form_and_never_the_same():
    secret = signing.new_secret()
    assert secret.startswith("whsec_") and len(secret) == len("whsec_") + 44  # 32 bytes in base64
    assert secret != signing.new_secret()


def test_a_url_is_taken_apart_with_its_host_as_dns_and_tls_see_it():
    destination = destinations.parse("https://Hooks.Example.COM./in/box?from=dashboard")
    assert destination == destinations.Destination("https", "hooks.example.com", 443, "/in/box?from=dashboard")
    assert destination.host_header == "hooks.example.com"
    assert destinations.parse("http://[::1]:8080").host_header == "[::1]:8080"
    assert destinations.parse("http://bücher.example/").host == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/", "begins with http:// or https://"),
        ("example.com/hook", "begins with http:// or https://"),
        ("https://user:secret@example.com/", "user name or password"),
        ("https:///hook", "needs a host"),
        ("https://example.com:0/", "Port 0"),
        ("https://example.com:99999/", "Not a URL"),
        ("https://exa mple.com/", "no spaces"),
        ("https://example.com/\r\nX-Injected: 1", "no spaces"),
        ("https://example.com/" + "a" * 2000, "at most 2000 characters"),
        ("https://exa$mple.com/", "Not a host name"),
    ],
)
def test_a_url_a_webhook_may_not_have_is_refused_with_why(url, message):
    with pytest.raises(destinations.Refused) as refused:
        destinations.parse(url)
    assert message in refused.value.message


@pytest.mark.parametrize(
    ("allowed", "host", "taken"),
    [
        (["hooks.example.com"], "hooks.example.com", True),
        (["hooks.example.com"], "example.com", False),
        (["Hooks.Example.com."], "hooks.example.com", True),
        ([".example.com"], "example.com", True),
        ([".example.com"], "a.b.example.com", True),
        ([".example.com"], "badexample.com", False),
        (["*"], "anything.example.org", True),
        (["127.0.0.1"], "127.0.0.1", True),
        (["127.0.0.1"], "localhost", False),
    ],
)
def test_only_the_hosts_the_operator_allows_are_taken(settings, allowed, host, taken):
    settings.WEBHOOK_ALLOWED_HOSTS = allowed
    destination = destinations.Destination("https", host, 443, "/")
    if taken:
        destinations.check_host(destination)
    else:
        with pytest.raises(destinations.Refused, match="only to the hosts"):
            destinations.check_host(destination)


def test_no_allowed_host_turns_webhooks_off(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    with pytest.raises(destinations.Refused, match="turned off"):
        destinations.check_host(destinations.parse("https://example.com/"))


def refusal(address: str, port: int) -> str | None:
    return destinations.AddressRules().refusal(ipaddress.ip_address(address), port)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",  # a cloud's metadata service
        "100.64.0.1",  # shared (carrier-grade NAT)
        "240.0.0.1",  # reserved
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:10.0.0.1",  # an IPv4 address written as IPv6
        "64:ff9b::a00:1",  # 10.0.0.1 through NAT64
    ],
)
def test_an_internal_address_is_refused_unless_its_network_is_allowed(settings, address):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    assert "internal address" in refusal(address, 8080)


def test_a_public_address_is_taken_and_an_unspecified_or_multicast_one_never(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["0.0.0.0/0", "::/0"]
    assert refusal("93.184.215.14", 443) is None
    assert refusal("2606:2800:21f:cb07:6820:80da:af6b:8b2c", 443) is None
    for address in ("0.0.0.0", "::", "224.0.0.1", "ff02::1"):
        assert "cannot be a webhook's address" in refusal(address, 80)


def test_an_allowed_network_opens_its_addresses_but_never_the_stacks_own_services(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    assert refusal("127.0.0.1", 8080) is None
    assert refusal("::ffff:127.0.0.1", 8080) is None
    assert "internal address" in refusal("127.0.0.2", 8080)
    assert "internal address" in refusal("169.254.169.254", 80)
    database = configured.DATABASES["default"]
    assert "own services" in refusal("127.0.0.1", int(database["PORT"] or 3306))
    for port in (5555, 8001, 8404):  # Flower, a web replica, HAProxy's monitoring
        assert "own services" in refusal("127.0.0.1", port)


def test_the_stacks_services_are_refused_where_their_names_resolve_even_on_a_public_address(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    settings.REDIS_URL = "redis://93.184.215.14:6379/0"
    assert "own services" in refusal("93.184.215.14", 6379)
    assert refusal("93.184.215.14", 443) is None


def test_a_network_that_is_not_one_is_a_configuration_error(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["10.0.0.0/33"]
    assert [error.id for error in destinations.check_settings()] == ["webhooks.E001"]


def test_registration_refuses_an_address_a_delivery_could_not_reach(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["*"]
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    with pytest.raises(destinations.Refused, match="internal address"):
        destinations.check("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(destinations.Refused, match="internal address"):
        destinations.check("http://localhost:8080/")
    assert destinations.check("https://93.184.215.14/hook").host == "93.184.215.14"


def test_a_delivery_to_a_refused_address_is_an_attempt_that_failed_without_a_connection(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["*"]
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    answer = posting.post("http://127.0.0.1:9/", b"{}", {})
    assert not answer.delivered and answer.status_code is None and "internal address" in answer.error


CREATED = datetime.datetime(2026, 12, 1, 8, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("attempts_before", "after", "then"),
    [
        (0, datetime.timedelta(0), datetime.timedelta(seconds=30)),
        (1, datetime.timedelta(minutes=1), datetime.timedelta(minutes=3)),
        (3, datetime.timedelta(hours=1), datetime.timedelta(hours=1, minutes=30)),
        (20, datetime.timedelta(hours=12), datetime.timedelta(hours=20)),  # the last wait repeats
        (20, datetime.timedelta(hours=23), datetime.timedelta(hours=24)),  # never past the day
        (20, datetime.timedelta(hours=24), None),  # its day is over: failed
    ],
)
def test_a_failed_attempt_is_tried_again_later_and_later_for_a_day(attempts_before, after, then):
    delivery = WebhookDelivery(created_at=CREATED, attempts=attempts_before)
    expected = None if then is None else CREATED + then
    assert delivering.next_attempt(delivery, CREATED + after) == expected


def test_the_answers_that_deliver_are_the_2xx():
    assert [posting.Answer(status_code=code).delivered for code in (200, 204, 299, 301, 410, 500)] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    assert not posting.Answer(error="Connection refused").delivered
