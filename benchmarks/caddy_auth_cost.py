"""What a refused login costs the server: Caddy's CPU per request for bcrypt costs 14, 10 and 4,
for an unknown user name, without credentials, and behind the login gate (Caddy + gate CPU).

    .venv/bin/python -m benchmarks.caddy_auth_cost      # needs `caddy` (apt-get install caddy)

Starts its own Caddy and gate on loopback (ports from the OS), sends requests on one keep-alive
connection, and reads the processes' CPU from /proc. The figures in docs/operations.md come
from here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from zdte_assets.apps import authgate
from zdte_assets_tests.services import free_ports
from zdte_assets_tests.stack_client import login_burst


def measure(port: int, pids: list[int], n: int, user: str | None, source: str) -> str:
    """`n` refused logins as `user` (wrong passwords; no credentials when None)."""
    burst = login_burst(
        port,
        pids,
        "a.localhost",
        source,
        n,
        lambda i: None if user is None else (user, f"wrong{i}"),
        timeout=120,
    )
    statuses = dict(burst.statuses)
    return f"{1000 * burst.cpu / n:9.2f} ms of CPU per request  ({n} requests: {statuses})"


def main() -> int:
    caddy = shutil.which("caddy")
    if caddy is None:
        print("caddy not found (apt-get install caddy)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="caddy-auth-cost-"))
    ports = free_ports(6)
    sites = {14: ports[0], 10: ports[1], 4: ports[2]}
    gated, gate_port, admin = ports[3], ports[4], ports[5]
    hashes = {cost: authgate.hash_password("right", cost) for cost in sites}
    blocks = [
        f"https://a.localhost:{port} {{\n\tbind 127.0.0.1\n\ttls internal\n"
        f"\tbasicauth {{\n\t\tdesk {hashes[cost]}\n\t}}\n\trespond ok\n}}\n"
        for cost, port in sites.items()
    ]
    blocks.append(
        f"https://a.localhost:{gated} {{\n\tbind 127.0.0.1\n\ttls internal\n\troute {{\n"
        f"\t\tforward_auth 127.0.0.1:{gate_port} {{\n\t\t\turi /check\n"
        "\t\t\theader_up X-Zdte-Client {remote_host}\n\t\t}\n"
        f"\t\tbasicauth {{\n\t\t\tdesk {hashes[4]}\n\t\t}}\n\t}}\n\trespond ok\n}}\n"
    )
    config = work / "Caddyfile"
    config.write_text(
        f"{{\n\tskip_install_trust\n\tauto_https disable_redirects\n\tadmin localhost:{admin}\n}}\n"
        + "".join(blocks)
    )
    env = {**os.environ, "XDG_DATA_HOME": str(work / "data"), "XDG_CONFIG_HOME": str(work)}
    env |= {"CADDY_AUTH_USER": "desk", "CADDY_AUTH_HASH": hashes[4]}
    log = open(work / "log", "wb")  # noqa: SIM115 - closed with the processes
    procs = [
        subprocess.Popen(
            [caddy, "run", "--config", str(config), "--adapter", "caddyfile"],
            env=env,
            stdout=log,
            stderr=log,
        ),
        subprocess.Popen(
            [sys.executable, "-m", "zdte_assets.apps.authgate", "serve", "--port", str(gate_port)],
            env=env,
            stdout=log,
            stderr=log,
        ),
    ]
    try:
        time.sleep(4)  # certificates issued, gate listening
        caddy_pid, gate_pid = procs[0].pid, procs[1].pid
        print(f"Caddy {subprocess.run([caddy, 'version'], capture_output=True, text=True).stdout}")
        for cost, port in sites.items():
            n = {14: 5, 10: 50, 4: 1000}[cost]
            print(
                f"wrong password, cost {cost:2}:  {measure(port, [caddy_pid], n, 'desk', '127.0.0.1')}"
            )
        print(
            f"unknown user, cost 4 hash: {measure(sites[4], [caddy_pid], 5, 'nobody', '127.0.0.1')}"
        )
        print(
            f"no credentials:            {measure(sites[4], [caddy_pid], 1000, None, '127.0.0.1')}"
        )
        both = [caddy_pid, gate_pid]
        print(f"gate, wrong passwords:     {measure(gated, both, 1000, 'desk', '127.0.0.2')}")
        print(f"gate, unknown users:       {measure(gated, both, 1000, 'nobody', '127.0.0.3')}")
        print(f"gate, no credentials:      {measure(gated, both, 1000, None, '127.0.0.4')}")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
