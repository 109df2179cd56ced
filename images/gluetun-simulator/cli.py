"""Gluetun control server SIMULATOR (a test and demo fixture, not a VPN): the command line.

Usage:
  gluetun-sim [serve]                         run the simulator (the container's default command)
  gluetun-sim healthcheck                     GET the health server; exit 0 when healthy, 1 otherwise
  gluetun-sim set-health healthy|unhealthy    force the health server to fail, or let it answer its check again
  gluetun-sim set-fault none|hang|500|nonjson make every control-server route hang, answer 500 or non-JSON
  gluetun-sim status                          print the simulator's current state as JSON
  gluetun-sim genkey                          print a random 22-character base58 API key

The healthcheck runs every second in every simulator container: it imports nothing but socket and os, and
the server module (simulator.py) is only imported to serve. Environment: see docs/simulators.md.
"""

import os
import socket
import sys

STATE_DIR = os.environ.get("GLUETUN_SIM_STATE_DIR", "/run/gluetun-sim")
FAULTS = ("none", "hang", "500", "nonjson")
HEALTH_STATES = ("healthy", "unhealthy")


def healthcheck():
    """Like Gluetun's 'healthcheck' command: GET the health server, exit 0 on 200, else 1 with its error."""
    address = os.environ.get("HEALTH_SERVER_ADDRESS") or "127.0.0.1:9999"
    host, _sep, port = address.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    try:
        with socket.create_connection((host, int(port)), timeout=2) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\nHost: health\r\n\r\n")
            data = b""
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
    except (OSError, ValueError) as exc:
        print(f"health server {address} unreachable: {exc}")
        return 1
    head, _sep, body = data.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1:2]
    if status == [b"200"]:
        return 0
    print(f"unhealthy: {body.decode(errors='replace').strip() or head.decode(errors='replace')}")
    return 1


def set_state(name, value, allowed, command):
    if value not in allowed:
        print(f"usage: gluetun-sim {command} {'|'.join(allowed)}", file=sys.stderr)
        return 2
    os.makedirs(STATE_DIR, exist_ok=True)
    path = os.path.join(STATE_DIR, name)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    os.replace(path + ".tmp", path)
    print(f"{command}: {value}")
    return 0


def main(argv):
    command, args = (argv[1] if len(argv) > 1 else "serve"), argv[2:]
    if command == "healthcheck" and not args:
        return healthcheck()
    if command == "set-health" and len(args) == 1:
        return set_state("health", args[0], HEALTH_STATES, command)
    if command == "set-fault" and len(args) == 1:
        return set_state("fault", args[0], FAULTS, command)
    if command == "status" and not args:
        try:
            with open(os.path.join(STATE_DIR, "state.json"), encoding="utf-8") as handle:
                print(handle.read().strip())
        except OSError:
            print("{}")
        return 0
    if command == "genkey" and not args:
        import secrets  # pylint: disable=import-outside-toplevel
        alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
        print("".join(secrets.choice(alphabet) for _index in range(22)))
        return 0
    if command == "serve" and not args:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import simulator  # pylint: disable=import-outside-toplevel,import-error
        return simulator.serve()
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
