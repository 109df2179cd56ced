"""AceStream engine SIMULATOR (a test and demo fixture, not an AceStream engine).

Takes its ports the way each real engine image does, listens on them, and answers the part of the engine
HTTP API that the orchestrator uses. No P2P, no streaming.

Connectivity: a real engine behind a tunnel that is down has none. Behind the Gluetun simulator (in its network
namespace) the engine simulator asks the simulator's tunnel stand-in (ENGINE_SIM_VPN_STATUS_URL, default
http://127.0.0.2:9999/simulator/tunnel: no credentials needed, on an address no engine can take) for the VPN
loop status: "running" means connected; another status, or no answer in time, means not connected; nothing
listening means connected (not behind Gluetun). Gluetun's health server cannot tell: it keeps answering OK
while the VPN is stopped through the control server.

Port passing (what each variant of the orchestrator does):
  krinkuto11-amd64  env CONF (newline-separated --http-port=P, --https-port=Q, --bind-all, --port=R),
                    env HTTP_PORT, HTTPS_PORT, P2P_PORT, BIND_ALL=true
  jopsis-amd64      env ACESTREAM_ARGS="--http-port P --https-port Q [--port R]"
  jopsis-arm32/64   command: python main.py --bind-all --http-port P --https-port Q [--port R]
  AceServe (app)    command: python main.py --bind-all --http-port P --api-port A [--port R] (v1.7.3 passes no --https-port)

Several mechanisms may be used at once when they agree; when they disagree on a port the simulator exits
with an error (a real engine would silently use one of them). Standard library only.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import socketserver
import sys
import threading
import time
from http.client import HTTPConnection, HTTPException
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ENGINE_VERSION = os.environ.get("ENGINE_SIM_VERSION", "3.2.13-sim")
PORT_KEYS = ("http_port", "https_port", "api_port", "p2p_port")
FLAG_TO_KEY = {"--http-port": "http_port", "--https-port": "https_port", "--api-port": "api_port", "--port": "p2p_port"}
VPN_STATUS_URL = os.environ.get("ENGINE_SIM_VPN_STATUS_URL", "http://127.0.0.2:9999/simulator/tunnel")
VPN_STATUS_TTL = 1.0  # seconds an answer of the tunnel stand-in is reused
NAMESPACE_HINT = ("AceStream engines that share one network namespace (network_mode: container:<gluetun>) "
                  "must each listen on different ports")


def log(level, message):
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    print(f"{stamp}|{level}|engine-simulator|{message}", flush=True)


class UsageError(Exception):
    pass


def parse_port(value, where):
    try:
        port = int(str(value).strip())
    except ValueError as exc:
        raise UsageError(f"{where}: {value!r} is not a port number") from exc
    if not 1 <= port <= 65535:
        raise UsageError(f"{where}: {port} is not a port number (1-65535)")
    return port


def parse_flags(tokens, where):
    """AceStream engine flags (--http-port P or --http-port=P, --bind-all ...) -> (ports, bind_all, others)."""
    ports, bind_all, others = {}, False, []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not token.startswith("--"):
            others.append(token)
            continue
        name, has_value, value = token.partition("=")
        if name == "--bind-all":
            bind_all = True
            continue
        if name in FLAG_TO_KEY:
            if not has_value:
                if i >= len(tokens):
                    raise UsageError(f"{where}: {name} needs a value")
                value = tokens[i]
                i += 1
            ports[FLAG_TO_KEY[name]] = parse_port(value, f"{where} {name}")
            continue
        others.append(token)
        if not has_value and i < len(tokens) and not tokens[i].startswith("--"):
            others.append(tokens[i])
            i += 1
    return ports, bind_all, others


def truthy(value):
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def gather(argv, environ):
    """Every port source present, in precedence order: [(mechanism, ports, bind_all, detail)]."""
    sources = []
    if argv:
        ports, bind_all, others = parse_flags(argv, "command line")
        sources.append(("command", ports, bind_all, {"argv": argv, "ignored": others}))
    if environ.get("ACESTREAM_ARGS", "").strip():
        ports, bind_all, others = parse_flags(shlex.split(environ["ACESTREAM_ARGS"]), "ACESTREAM_ARGS")
        sources.append(("ACESTREAM_ARGS", ports, bind_all, {"ignored": others}))
    if environ.get("CONF", "").strip():
        tokens = []
        for line in environ["CONF"].splitlines():
            tokens.extend(shlex.split(line))
        ports, bind_all, others = parse_flags(tokens, "CONF")
        sources.append(("CONF", ports, bind_all, {"ignored": others}))
    env_ports = {}
    for key, name in (("http_port", "HTTP_PORT"), ("https_port", "HTTPS_PORT"), ("p2p_port", "P2P_PORT")):
        if environ.get(name, "").strip():
            env_ports[key] = parse_port(environ[name], name)
    if env_ports or truthy(environ.get("BIND_ALL", "")):
        sources.append(("env", env_ports, truthy(environ.get("BIND_ALL", "")), {}))
    return sources


def resolve(argv, environ):
    sources = gather(argv, environ)
    with_ports = [s for s in sources if s[1]]
    if not with_ports:
        raise UsageError(
            "no ports given: pass them as the real engine images take them - env CONF with --http-port=P "
            "(and HTTP_PORT) for krinkuto11-amd64, env ACESTREAM_ARGS='--http-port P --https-port Q' for "
            "jopsis-amd64, or the command 'python main.py --bind-all --http-port P --https-port Q' for the "
            "jopsis arm images")
    ports, origin = {}, {}
    for mechanism, found, _bind_all, _detail in with_ports:
        for key, port in found.items():
            if key in ports and ports[key] != port:
                raise UsageError(f"conflicting {key.replace('_', ' ')}: {origin[key]} says {ports[key]} but "
                                 f"{mechanism} says {port}")
            if key not in ports:
                ports[key], origin[key] = port, mechanism
    if "http_port" not in ports:
        raise UsageError("no HTTP port given (--http-port / HTTP_PORT): the engine API needs one")
    seen = {}
    for key in PORT_KEYS:
        if key in ports:
            if ports[key] in seen:
                raise UsageError(f"{key.replace('_', ' ')} and {seen[ports[key]].replace('_', ' ')} are both "
                                 f"{ports[key]}: an engine needs distinct ports")
            seen[ports[key]] = key
    return {
        "mechanism": with_ports[0][0],
        "mechanisms": [s[0] for s in with_ports],
        "http_port": ports.get("http_port"),
        "https_port": ports.get("https_port"),
        "api_port": ports.get("api_port"),
        "p2p_port": ports.get("p2p_port"),
        "origin": origin,
        "bind_all": any(s[2] for s in sources),
        "sources": {s[0]: {"ports": s[1], "bind_all": s[2], **s[3]} for s in sources},
    }


class VpnProbe:
    """Is the tunnel this engine sits behind up? Asks the Gluetun simulator's tunnel stand-in for the VPN loop
    status (in the simulator's network namespace it answers on 127.0.0.2:9999); an answer is reused for
    VPN_STATUS_TTL seconds.

    connected() -> (connected, reason): status "running", or nothing listening (not behind Gluetun), is connected;
    any other status, or no answer in time, is not."""

    def __init__(self, url):
        self.url = url.strip()
        self.lock = threading.Lock()
        self.checked_at, self.answer = None, (True, "not checked")

    def connected(self):
        if not self.url:
            return True, "VPN status check disabled (ENGINE_SIM_VPN_STATUS_URL is empty)"
        with self.lock:
            if self.checked_at is None or time.monotonic() - self.checked_at >= VPN_STATUS_TTL:
                self.answer, self.checked_at = self._ask(), time.monotonic()
            return self.answer

    def _ask(self):
        parts = urlsplit(self.url)
        conn = HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=0.5)
        try:
            conn.request("GET", parts.path or "/")
            response = conn.getresponse()
            body = response.read(512).decode(errors="replace").strip()
        except ConnectionRefusedError:
            return True, f"nothing listens on {self.url}: not behind Gluetun"
        except (OSError, HTTPException) as exc:
            return False, f"VPN status unknown: {self.url} did not answer: {exc}"
        finally:
            conn.close()
        try:
            status = json.loads(body)["status"]
        except (ValueError, KeyError, TypeError):
            return False, f"VPN status unknown: {self.url} answered {response.status}: {body}"
        if status == "running" and 200 <= response.status < 300:
            return True, f"VPN status running ({self.url} answered {response.status})"
        return False, f"VPN status {status} ({self.url} answered {response.status})"


def connectivity(info):
    """(connected, reason) right now: ENGINE_SIM_DISCONNECTED forces False, else the tunnel decides."""
    if not info["connected"]:
        return False, "ENGINE_SIM_DISCONNECTED=true"
    return info["vpn_probe"].connected()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)  # no reverse DNS lookup of the host name
        self.server_name, self.server_port = "engine", self.server_address[1]


class EngineHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AceStream-Engine-Simulator/" + ENGINE_VERSION
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        pass

    def reply(self, code, value):
        data = (json.dumps(value) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self):  # noqa: N802 - BaseHTTPRequestHandler's naming
        self.do_GET()

    def do_GET(self):  # noqa: N802 - BaseHTTPRequestHandler's naming
        info = self.server.info
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        method = query.get("method", "")
        if split.path == "/server/api":
            if method == "get_status":
                self.reply(200, {"result": {"status": info["engine_status"], "http_port": info["http_port"]},
                                 "error": None})
            elif method == "get_network_connection_status":
                self.reply(200, {"result": {"connected": connectivity(info)[0]}, "error": None})
            else:
                self.reply(200, {"result": None, "error": f"unknown method: {method}"})
        elif split.path == "/webui/api/service":
            if method == "get_version":
                self.reply(200, {"result": {"version": ENGINE_VERSION, "platform": "linux",
                                            "code": version_code(ENGINE_VERSION)}, "error": None})
            else:
                self.reply(200, {"result": None, "error": f"unknown method: {method}"})
        elif split.path == "/simulator/info":
            shown = {key: value for key, value in info.items() if key not in ("listeners", "vpn_probe")}
            shown["connected"], shown["connectivity"] = connectivity(info)
            self.reply(200, shown)
        else:
            self.reply(404, {"result": None, "error": f"{split.path} is not simulated"})

    def do_POST(self):  # noqa: N802 - BaseHTTPRequestHandler's naming
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.do_GET()


def version_code(version):
    numbers = [int(p) for p in version.split("-")[0].split(".") if p.isdigit()][:3]
    numbers += [0] * (3 - len(numbers))
    return numbers[0] * 1000000 + numbers[1] * 10000 + numbers[2] * 100


def listen_or_die(kind, port, origin, sock_type=socket.SOCK_STREAM):
    sock = socket.socket(socket.AF_INET, sock_type)
    try:
        sock.bind(("0.0.0.0", port))
        if sock_type == socket.SOCK_STREAM:
            sock.listen(64)
    except OSError as exc:
        sock.close()
        proto = "TCP" if sock_type == socket.SOCK_STREAM else "UDP"
        log("ERROR", f"cannot listen on {proto} port {port} ({kind} port, from {origin}): {exc.strerror}. "
            f"{NAMESPACE_HINT}; port {port} is already taken in this namespace.")
        sys.exit(3)
    return sock


def serve_or_die(kind, port, origin):
    """The engine API on one TCP port (the HTTP port, and the API port when given)."""
    try:
        return Server(("0.0.0.0", port), EngineHandler)
    except OSError as exc:
        log("ERROR", f"cannot listen on TCP port {port} ({kind} port, from {origin}): {exc.strerror}. "
            f"{NAMESPACE_HINT}; port {port} is already taken in this namespace.")
        sys.exit(3)


def accept_and_drop(sock, stopping):
    sock.settimeout(0.5)
    while not stopping.is_set():
        try:
            conn, _addr = sock.accept()
        except (socket.timeout, OSError):
            continue
        conn.close()


def drain_udp(sock, stopping):
    sock.settimeout(0.5)
    while not stopping.is_set():
        try:
            sock.recvfrom(2048)
        except (socket.timeout, OSError):
            continue


def main(argv):
    started = time.monotonic()
    try:
        info = resolve(argv, os.environ)
    except UsageError as exc:
        log("ERROR", str(exc))
        return 2
    info.update({
        "simulator": "acestream-engine",
        "engine_version": ENGINE_VERSION,
        "engine_status": os.environ.get("ENGINE_SIM_STATUS", "idle"),
        "connected": not truthy(os.environ.get("ENGINE_SIM_DISCONNECTED", "")),
        "vpn_status_url": VPN_STATUS_URL.strip() or None,
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    stopping = threading.Event()
    # Bind everything first, so that a clash is reported at once whatever port it is on.
    servers = [serve_or_die("http", info["http_port"], info["origin"]["http_port"])]
    if info["api_port"]:
        servers.append(serve_or_die("api", info["api_port"], info["origin"]["api_port"]))
    extra = []
    if info["https_port"]:
        extra.append((accept_and_drop, listen_or_die("https", info["https_port"], info["origin"]["https_port"])))
    if info["p2p_port"]:
        origin = info["origin"]["p2p_port"]
        extra.append((accept_and_drop, listen_or_die("p2p", info["p2p_port"], origin)))
        extra.append((drain_udp, listen_or_die("p2p", info["p2p_port"], origin, socket.SOCK_DGRAM)))
    probe = VpnProbe(VPN_STATUS_URL)
    for server in servers:
        server.info = {**info, "vpn_probe": probe}
    for func, sock in extra:
        threading.Thread(target=func, args=(sock, stopping), daemon=True).start()
    for server in servers:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    def stop(signum, _frame):
        log("INFO", f"caught {signal.Signals(signum).name}, stopping")
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log("INFO", f"AceStream engine SIMULATOR {ENGINE_VERSION} (test fixture) via {'+'.join(info['mechanisms'])}: "
        f"http {info['http_port']}, https {info['https_port']}, api {info['api_port']}, p2p {info['p2p_port']}, "
        f"bind-all {info['bind_all']}; ready in {time.monotonic() - started:.3f}s")
    stopping.wait()
    for server in servers:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
