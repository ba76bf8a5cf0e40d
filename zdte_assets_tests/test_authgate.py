"""The login gate in front of Caddy's basic auth: budgets, decisions, and its HTTP face.

The real thing behind Caddy, flooded, is in test_stack_security.py (marked ``stack``)."""

from __future__ import annotations

import base64
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import bcrypt
import pytest

from zdte_assets.apps import authgate

PASSWORD = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def hashed() -> str:
    return authgate.hash_password(PASSWORD)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_the_hash_is_bcrypt_at_cost_4_and_checks(hashed: str) -> None:
    assert hashed.startswith("$2b$04$")
    assert authgate.bcrypt_cost(hashed) == authgate.BCRYPT_COST == 4
    assert bcrypt.checkpw(PASSWORD.encode(), hashed.encode())


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    b = authgate.Buckets(burst=3, per_minute=6, clock=clock)
    assert [b.take("a") for _ in range(4)] == [True, True, True, False]
    assert b.take("b")  # another key has its own bucket
    assert b.retry_after("a") == 10  # 6 per minute: one every 10 s
    clock.now += 10
    assert b.take("a") and not b.take("a")
    b.give_back("a")
    assert b.take("a")


def test_a_bucket_keeps_a_bounded_number_of_keys() -> None:
    clock = Clock()
    b = authgate.Buckets(burst=2, per_minute=1, clock=clock, max_keys=100)
    for i in range(1000):
        b.take(f"10.0.{i // 256}.{i % 256}")
    assert len(b._state) <= 100


def test_clients_are_ipv4_addresses_or_ipv6_networks() -> None:
    assert authgate.client_key("192.0.2.7") == "192.0.2.7"
    assert authgate.client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert authgate.client_key("2001:db8:1:2:aaaa::1") == authgate.client_key("2001:db8:1:2::9")
    assert authgate.client_key("2001:db8:1:2::1") != authgate.client_key("2001:db8:1:3::1")


def _gate(hashed: str, clock: Clock, **kw: float) -> authgate.Gate:
    return authgate.Gate("desk", hashed, clock=clock, **kw)  # type: ignore[arg-type]


def test_without_credentials_the_answer_is_401_and_uses_no_attempt(hashed: str) -> None:
    gate = _gate(hashed, Clock(), burst=2, per_minute=1)
    assert {gate.decide("a", None).status for _ in range(50)} == {401}
    assert gate.decide("a", basic("desk", PASSWORD)).status == 200


def test_failed_logins_are_limited_and_cost_no_hash_once_over_budget(
    hashed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[bytes] = []
    real = bcrypt.checkpw

    def counted(password: bytes, hashed_password: bytes) -> bool:
        checks.append(password)
        return real(password, hashed_password)

    monkeypatch.setattr(bcrypt, "checkpw", counted)
    clock = Clock()
    gate = _gate(hashed, clock, burst=5, per_minute=6, total_per_minute=1000)
    answers = [gate.decide("attacker", basic("desk", f"guess{i}")).status for i in range(500)]
    answers += [gate.decide("attacker", basic(f"user{i}", "x")).status for i in range(500)]
    assert answers[:5] == [401] * 5 and set(answers[5:]) == {429}
    assert len(checks) == 5  # wrong user names are refused without a hash
    limited = gate.decide("attacker", basic("desk", "again"))
    assert limited == authgate.Decision(429, 10)
    # Someone else is not affected; the right password gives its attempt back.
    assert gate.decide("desk-pc", basic("desk", "typo")).status == 401
    assert gate.decide("desk-pc", basic("desk", PASSWORD)).status == 200
    # Once known right, the same credentials pass from anywhere without a new hash.
    before = len(checks)
    assert gate.decide("attacker", basic("desk", PASSWORD)).status == 200
    assert len(checks) == before
    # The budget refills with time.
    clock.now += 10
    assert gate.decide("attacker", basic("desk", "one more")).status == 401


def test_all_clients_together_have_a_budget_too(hashed: str) -> None:
    gate = _gate(hashed, Clock(), burst=5, per_minute=5, total_per_minute=20)
    answers = [gate.decide(f"10.0.0.{i}", basic("nobody", "x")).status for i in range(100)]
    assert answers.count(401) == 20 and answers.count(429) == 80


def test_a_costly_hash_or_a_missing_setting_is_refused_in_one_line() -> None:
    costly = bcrypt.hashpw(b"x", bcrypt.gensalt(rounds=12)).decode()
    with pytest.raises(authgate.GateError, match=r"cost 12.*hash-password"):
        authgate.Gate("desk", costly)
    with pytest.raises(authgate.GateError, match="not a bcrypt hash"):
        authgate.gate_from_env({"CADDY_AUTH_USER": "desk", "CADDY_AUTH_HASH": "x"}, print)
    with pytest.raises(authgate.GateError, match="CADDY_AUTH_USER"):
        authgate.gate_from_env({"CADDY_AUTH_HASH": authgate.hash_password("x")}, print)


@pytest.fixture
def served(hashed: str) -> Iterator[str]:
    gate = authgate.Gate("desk", hashed, burst=2, per_minute=1)
    server = authgate.make_server(gate, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str, **headers: str) -> tuple[int, dict[str, str]]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as r:
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def test_the_http_answers_are_what_caddy_forward_auth_passes_on(served: str) -> None:
    assert _get(f"{served}/healthz")[0] == 200
    assert _get(f"{served}/other")[0] == 404
    status, headers = _get(f"{served}/check")
    assert status == 401 and headers["WWW-Authenticate"] == authgate.CHALLENGE
    client = {authgate.CLIENT_HEADER: "198.51.100.4"}
    assert _get(f"{served}/check", Authorization=basic("desk", PASSWORD), **client)[0] == 200
    for _ in range(2):
        assert _get(f"{served}/check", Authorization=basic("desk", "no"), **client)[0] == 401
    status, headers = _get(f"{served}/check", Authorization=basic("desk", "no"), **client)
    assert status == 429 and int(headers["Retry-After"]) >= 1
    # The budget is the client's that Caddy names, not the connection's (Caddy's own).
    assert _get(f"{served}/check", Authorization=basic("desk", "no"))[0] == 401
