"""The gate in front of the UIs' basic auth: failed logins are limited per client before any
password hash is computed.

Why it exists. Caddy's `basicauth` computes bcrypt for every request that carries credentials,
and for an unknown user name it compares against a built-in hash of cost 14 whatever the cost
of the configured one (measured here: 1.1 s of CPU per request); Caddy has no rate limit without
a plugin, in Debian's 2.6 as in the `caddy:2` image. So Caddy asks this service first
(`forward_auth` in docker/Caddyfile) and hashes only what the gate let through:

* a client (an IPv4 address, or an IPv6 /64) that used up its budget of failed attempts gets
  429 at once, without a hash; so does everyone once all clients together used up theirs;
* a request without credentials gets 401 (the browser's first request; nothing to hash);
* credentials for another user name get 401 and use one attempt, without a hash;
* the right user name costs one bcrypt check at the hash's cost (4: about 1 ms) and one attempt,
  given back when the password is right; right credentials are remembered (their SHA-256, in
  memory) so a logged-in user is neither hashed again nor locked out by an attacker behind the
  same address.

The budget is a token bucket: `burst` attempts at once, refilled at `per_minute`. The worst CPU
an attacker can make the stack spend on hashing is therefore (total burst + total per minute x
minutes) x one check, whatever the number of requests; every other request costs what serving
an error costs. The gate holds only the bcrypt hash, the same one Caddy checks again.

`python -m zdte_assets.apps.authgate serve` runs it (`zdte stack up` does, on loopback);
`python -m zdte_assets.apps.authgate hash-password` prints a bcrypt hash at the cost used here for a
password read from stdin (for compose's `.env`).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import ipaddress
import math
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from zdte_assets.core import config
from zdte_assets.core.errors import first_line

#: bcrypt's minimum. The UI password is a generated 160-bit token: no work factor makes guessing
#: it harder than it already is, while each unit of cost doubles what a wrong password costs us.
BCRYPT_COST = 4
#: Above this a failed check costs more than 70 ms (cost 10) and the budgets below stop bounding
#: CPU usefully; the gate refuses to start rather than run with such a hash.
MAX_BCRYPT_COST = 10
#: The header Caddy sets to the client's address (any value the client sent is overwritten).
CLIENT_HEADER = "X-Zdte-Client"
#: Same realm as Caddy's basicauth, so the browser keeps one set of credentials.
CHALLENGE = 'Basic realm="restricted"'
_ALL = "*"


class GateError(ValueError):
    """A setting of the gate is missing or unusable."""


def hash_password(password: str, cost: int = BCRYPT_COST) -> str:
    """A ``$2b$`` bcrypt hash, which Caddy's basicauth and this gate both accept."""
    import bcrypt

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()


def bcrypt_cost(hashed: str) -> int:
    """The cost field of a ``$2a$``/``$2b$``/``$2y$`` hash."""
    parts = hashed.split("$")
    if len(parts) != 4 or parts[1] not in ("2a", "2b", "2y") or not parts[2].isdigit():
        raise GateError("CADDY_AUTH_HASH is not a bcrypt hash ($2a$/$2b$/$2y$)")
    return int(parts[2])


def client_key(address: str) -> str:
    """What the budget is kept per: the IPv4 address, or the /64 of an IPv6 address (one host
    usually holds a whole /64)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address.strip()[:64] or "?"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class Buckets:
    """Token buckets by key: `burst` tokens, refilled at `per_minute`. A key whose bucket is
    full is the same as an unknown one, so at most `max_keys` are kept (full ones dropped
    first, then the oldest)."""

    def __init__(
        self,
        burst: float,
        per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        if burst < 1 or per_minute <= 0:
            raise GateError("a failure budget needs burst >= 1 and per_minute > 0")
        self.burst = float(burst)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_keys = max_keys
        self._state: dict[str, tuple[float, float]] = {}

    def level(self, key: str) -> float:
        now = self.clock()
        tokens, then = self._state.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - then) * self.rate)

    def take(self, key: str) -> bool:
        level = self.level(key)
        if level < 1.0:
            return False
        self._set(key, level - 1.0)
        return True

    def give_back(self, key: str) -> None:
        self._set(key, min(self.burst, self.level(key) + 1.0))

    def retry_after(self, key: str) -> int:
        """Seconds until the next token."""
        return max(1, math.ceil((1.0 - self.level(key)) / self.rate))

    def _set(self, key: str, tokens: float) -> None:
        self._state.pop(key, None)
        if tokens < self.burst:
            self._state[key] = (tokens, self.clock())
        if len(self._state) > self.max_keys:
            for k in [k for k in self._state if self.level(k) >= self.burst]:
                del self._state[k]
            while len(self._state) > self.max_keys:
                del self._state[next(iter(self._state))]


@dataclass(frozen=True)
class Decision:
    status: int  # 200 let Caddy go on, 401 ask for credentials, 429 over budget
    retry_after: int | None = None


class Gate:
    """The decision for one request, from the client key and its Authorization header."""

    def __init__(
        self,
        user: str,
        hashed: str,
        *,
        burst: int = 10,
        per_minute: float = 10,
        total_per_minute: float = 100,
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        if not user:
            raise GateError("CADDY_AUTH_USER is empty")
        cost = bcrypt_cost(hashed)
        if cost > MAX_BCRYPT_COST:
            raise GateError(
                f"CADDY_AUTH_HASH has bcrypt cost {cost}: every failed login would cost "
                f"about {2 ** (cost - 10) * 70:.0f} ms of CPU; make a cost-{BCRYPT_COST} hash "
                "with `python -m zdte_assets.apps.authgate hash-password`"
            )
        self.user = user.encode()
        self.hashed = hashed.encode()
        self.clients = Buckets(burst, per_minute, clock)
        self.everyone = Buckets(total_per_minute, total_per_minute, clock)
        self._good: dict[bytes, None] = {}
        self._limited: set[str] = set()
        self._lock = threading.Lock()
        self.log = log

    def decide(self, client: str, authorization: str | None) -> Decision:
        digest = hashlib.sha256((authorization or "").encode()).digest()
        with self._lock:
            if authorization and digest in self._good:
                return Decision(200)
            for buckets, key in ((self.clients, client), (self.everyone, _ALL)):
                if buckets.level(key) < 1.0:
                    self._note_limited(client)
                    return Decision(429, buckets.retry_after(key))
            self._limited.discard(client)
            if not authorization:
                return Decision(401)
            # Both have a token (checked above under the same lock): one attempt each.
            self.clients.take(client)
            self.everyone.take(_ALL)
        user, password = _basic_credentials(authorization)
        if user is None or not hmac.compare_digest(user, self.user):
            return Decision(401)
        import bcrypt

        if not bcrypt.checkpw(password, self.hashed):
            return Decision(401)
        with self._lock:
            self.clients.give_back(client)
            self.everyone.give_back(_ALL)
            self._good[digest] = None
            while len(self._good) > 32:
                del self._good[next(iter(self._good))]
        return Decision(200)

    def _note_limited(self, client: str) -> None:
        if client not in self._limited:
            self._limited.add(client)
            self.log(f"authgate: {client} is over its budget of failed logins; answering 429")


def _basic_credentials(authorization: str) -> tuple[bytes | None, bytes]:
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None, b""
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None, b""
    user, sep, password = raw.partition(b":")
    return (user, password) if sep else (None, b"")


def gate_from_env(env: Mapping[str, str], log: Callable[[str], None]) -> Gate:
    """The gate configured as `zdte stack` and compose configure it (docker/stack.env)."""
    try:
        return Gate(
            env.get("CADDY_AUTH_USER", ""),
            env.get("CADDY_AUTH_HASH", "").strip(),
            burst=int(env.get("ZDTE_AUTH_FAILURE_BURST", "10")),
            per_minute=float(env.get("ZDTE_AUTH_FAILURES_PER_MINUTE", "10")),
            total_per_minute=float(env.get("ZDTE_AUTH_TOTAL_FAILURES_PER_MINUTE", "100")),
            log=log,
        )
    except ValueError as exc:
        raise GateError(first_line(str(exc))) from None


def make_server(gate: Gate, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP/1.1 server answering Caddy's `forward_auth` on /check, and /healthz."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30  # idle keep-alive connections are closed; Caddy opens new ones

        def do_GET(self) -> None:
            if self.path == "/healthz":
                return self._answer(200)
            if self.path != "/check":
                return self._answer(404)
            client = client_key(self.headers.get(CLIENT_HEADER) or self.client_address[0])
            decision = gate.decide(client, self.headers.get("Authorization"))
            headers = {}
            if decision.status == 401:
                headers["WWW-Authenticate"] = CHALLENGE
            if decision.retry_after is not None:
                headers["Retry-After"] = str(decision.retry_after)
            self._answer(decision.status, headers)

        def _answer(self, status: int, headers: Mapping[str, str] | None = None) -> None:
            self.send_response_only(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per request would let a flood fill the disk

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zdte_assets.apps.authgate")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="answer Caddy's forward_auth")
    serve.add_argument("--host", default=config.authgate_settings().host)
    serve.add_argument("--port", type=int, default=config.authgate_settings().port)
    sub.add_parser("hash-password", help=f"bcrypt (cost {BCRYPT_COST}) of a password on stdin")
    args = parser.parse_args(argv)
    if args.command == "hash-password":
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            print("authgate: no password on stdin", file=sys.stderr)
            return 2
        print(hash_password(password))
        return 0

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        gate = gate_from_env(config.environment(), log)
    except GateError as exc:
        print(f"authgate: {exc}", file=sys.stderr)
        return 2
    server = make_server(gate, args.host, args.port)
    log(
        f"authgate: on {args.host}:{args.port}, {gate.clients.burst:.0f} failed logins per "
        f"client at once, {gate.clients.rate * 60:g}/min after, {gate.everyone.rate * 60:g}/min "
        "for all clients"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
