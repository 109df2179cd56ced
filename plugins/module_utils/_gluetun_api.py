# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client for Gluetun's HTTP control server, every release from v3.39.0 to latest.

Private to this collection: not an API for other collections.

HTTP only (no Docker) and standard library only, so that it runs on any target. What it knows about the
releases (see docs/gluetun_status.md):

* ``/v1/portforward`` exists from v3.41.0; before, ``/v1/openvpn/portforwarded``; from v3.41 the old route
  answers 301 to the new one, which is followed with the same credentials (same server only).
* Port answers: ``{"port": N}``, ``{"ports": [...]}``, both, ``"ports": null``; 0 or empty = none yet.
* ``/v1/vpn/status``, with ``/v1/openvpn/status`` where the former is absent.
* Bodies are JSON sent as ``text/plain``: parsed whatever the Content-Type says.
* 401 means no role allows the route, or the credentials failed; up to v3.41.1 an unknown route is 401 too
  (v3.39.0: 400; from v3.41.2: 404 / 405).
* The API key goes in the ``X-API-Key`` header; basic auth in ``Authorization``. Secrets never appear in
  any message this module builds.

What it guarantees whatever the server does: one deadline per request (``timeout``), from the connect to the last
byte of the body, redirects included: every read of the status line, the headers and the body (chunked or not) gets
only the time left, so a server that sends one byte at a time forever is given up at the deadline. A body that is
not JSON as Gluetun writes it (more than MAX_BODY_BYTES, nested deeper than MAX_JSON_DEPTH, not UTF-8, not JSON, a
field of the wrong type) is a GluetunInvalidResponse naming the container and the route. Nothing but a GluetunError
leaves the client.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import math
import re
import socket
import ssl
import time
from urllib.parse import urljoin, urlsplit

from ansible_collections.acestream.orchestrator.plugins.module_utils._errors import AcestreamError
from ansible_collections.acestream.orchestrator.plugins.module_utils._text import (
    CONTROL_CHARACTER_RE,
    kind_of,
)

# Gluetun's default control-server port is _portplan.GLUETUN_DEFAULT_API_PORT (this client only takes URLs).
DEFAULT_TIMEOUT = 5.0
MAX_BODY_BYTES = 1 << 20
# Gluetun's answers are flat objects (one list at most): anything nested deeper is not from a control server, and is
# refused before it is parsed (a parser recursing through 100000 '[' would raise RecursionError, not a GluetunError).
MAX_JSON_DEPTH = 32
MAX_REDIRECTS = 3
USER_AGENT = "acestream.orchestrator-gluetun-client"

ROUTE_VERSION = "/v1/version"
ROUTE_VPN_STATUS = "/v1/vpn/status"
ROUTE_OPENVPN_STATUS = "/v1/openvpn/status"
ROUTE_PUBLIC_IP = "/v1/publicip/ip"
ROUTE_PORTFORWARD = "/v1/portforward"
ROUTE_OPENVPN_PORTFORWARDED = "/v1/openvpn/portforwarded"

PUBLIC_IP_FIELDS = ("country", "region", "city", "hostname", "organization", "location", "postal_code",
                    "timezone")
AUTH_FILE = "/gluetun/auth/config.toml"

# Answers that mean "this release has no such route" (v3.39.0: 400, v3.41.2+: 404 / 405).
ROUTE_ABSENT_STATUSES = (400, 404, 405)
# What an api_url cannot hold once its ends are trimmed: spaces and control characters.
_URL_UNSAFE_RE = re.compile(r"[\x00-\x20\x7f-\x9f]")
FIRST_PORTFORWARD_RELEASE = (3, 41, 0)
FIRST_DEFAULT_ROLE_RELEASE = (3, 41, 0)


class GluetunError(AcestreamError):
    """A failure talking to one control server, with a message a user can act on.

    ``kind`` is one of ``unreachable``, ``timeout``, ``unauthorized``, ``http``, ``invalid``, ``config``.
    ``retriable`` tells a waiting caller whether asking again later can help.
    """

    kind = "error"
    retriable = True

    def __init__(self, message, route=None, url=None, status=None, method="GET"):
        super(GluetunError, self).__init__(message)
        self.message = message
        self.route = route
        self.url = url
        self.status = status
        self.method = method

    @property
    def entry(self):
        """``"GET /v1/portforward"``: the route as an auth-file entry."""
        return "%s %s" % (self.method, self.route)

    def __str__(self):
        return self.message


class GluetunUnreachable(GluetunError):
    """Nothing answered HTTP at the address (refused, unresolved, no route, connection dropped)."""

    kind = "unreachable"


class GluetunTimeout(GluetunError):
    """The server accepted the connection (or not) but did not answer in time."""

    kind = "timeout"


class GluetunUnauthorized(GluetunError):
    """401: no role allows the route, or the credentials were refused. Waiting does not fix it."""

    kind = "unauthorized"
    retriable = False


class GluetunHTTPError(GluetunError):
    """Any other HTTP status than the one expected."""

    kind = "http"


class GluetunInvalidResponse(GluetunError):
    """An answer that is not what a Gluetun control server sends (not JSON, wrong fields)."""

    kind = "invalid"


class GluetunConfigError(GluetunError):
    """Bad input, detected before any request. ``field`` and ``detail``, when set, are the option at fault and the
    message's words after its name."""

    kind = "config"
    retriable = False
    field = None
    detail = None


def parse_version(text):
    """``"v3.41.1"`` -> ``(3, 41, 1)``; anything else (``latest``, a commit, None) -> None."""
    if not isinstance(text, str):
        return None
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def ports_from_answer(data):
    """The forwarded ports in any answer shape of either port route; [] when none is forwarded (yet).

    ``{"port": N}``, ``{"ports": [..]}``, ``{"port": N, "ports": [..]}``, ``{"port": 0, "ports": null}``.
    Raises ValueError for anything else.
    """
    if not isinstance(data, dict) or ("port" not in data and "ports" not in data):
        raise ValueError("no 'port' or 'ports' field")
    ports = []
    listed = data.get("ports")
    if listed is not None:
        if not isinstance(listed, list):
            raise ValueError("'ports' is not a list")
        for value in listed:
            ports.append(_port_value(value, "ports"))
    single = data.get("port")
    if single is not None:
        single = _port_value(single, "port")
        if single and single not in ports:
            ports.insert(0, single)
    return [port for port in ports if port]


def _port_value(value, field):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValueError("'%s' holds %r, not a port number" % (field, value))
    return value


def validate_api_url(url):
    """Check and normalise a base URL (scheme, host, no credentials); returns it without a trailing slash.

    Raises GluetunConfigError. The message repeats the URL only once it is known to carry no credentials, no query
    (which could hold a key) and no control character.
    """
    if not isinstance(url, str) or not url.strip():
        raise GluetunConfigError("api_url must be a non-empty URL such as http://127.0.0.1:8001")
    url = url.strip(" ")
    try:
        parts = urlsplit(url)
        has_credentials = parts.username is not None or parts.password is not None
    except ValueError:  # e.g. an unclosed '[' of an IPv6 address
        raise GluetunConfigError("api_url is not a URL (an IPv6 address goes in brackets: http://[::1]:8001): give "
                                 "a URL such as http://127.0.0.1:8001")
    if has_credentials:
        raise GluetunConfigError("api_url must not carry credentials: give them as api_key, or username and password")
    if parts.query or parts.fragment:
        raise GluetunConfigError("api_url must not have a query or fragment (nothing after '?' or '#'): give the "
                                 "credentials as api_key, or username and password")
    if _URL_UNSAFE_RE.search(url):
        raise GluetunConfigError("api_url holds a space, line break or other control character: give a URL such as "
                                 "http://127.0.0.1:8001")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GluetunConfigError("api_url %r is not an http:// or https:// URL with a host" % url)
    try:
        parts.port  # pylint: disable=pointless-statement
    except ValueError:
        raise GluetunConfigError("api_url %r has an invalid port" % url)
    return url.rstrip("/")


# What a credential may hold: it travels in a header (the API key as it is, username and password base64-encoded).
# A line break or other control character cannot (http.client refuses it, quoting the value); an API key outside
# printable ASCII cannot either (http.client encodes headers latin-1), nor a space at either end (the server
# trims it); ':' ends the username of a basic-auth token. Surrogates are not text (they cannot be encoded).
CREDENTIAL_RULES = {
    "api_key": "printable ASCII: letters, digits and punctuation, spaces only between them",
    "username": "any character but ':' and control characters (line breaks, tabs, NUL...)",
    "password": "any character but control characters (line breaks, tabs, NUL...)",
}
_API_KEY_RE = re.compile(r"[!-~](?:[ -~]*[!-~])?\Z")


def credential_problem(field, value):
    """Why ``value`` cannot be used as credential ``field`` (``api_key``, ``username``, ``password``), as words to
    follow the field's name ("must be a string ...", "holds a line break ..."); None when it can, or when it is not
    given (None or ""). The answer never holds the value or any part of it."""
    if value is None or value == "":
        return None
    rule = CREDENTIAL_RULES[field]
    if not isinstance(value, str):
        return "must be a string (%s), not %s" % (rule, kind_of(value))
    if "\n" in value or "\r" in value:
        return "holds a line break, which cannot be sent in a request header (a YAML '|' block ends with one: use " \
               "'|-'); allowed: %s" % rule
    if CONTROL_CHARACTER_RE.search(value):
        return "holds a control character, which cannot be sent in a request header; allowed: %s" % rule
    if field == "api_key" and not _API_KEY_RE.match(value):
        what = "a space at its start or end" if value.strip(" ") != value else "a character outside printable ASCII"
        return "holds %s, which the X-API-Key header cannot carry as it is; allowed: %s" % (what, rule)
    if field == "username" and ":" in value:
        return "holds ':', which ends the username in a basic-auth token; allowed: %s" % rule
    return None


def check_credentials(api_key=None, username=None, password=None, where=""):
    """The credentials Gluetun can use: an API key, or a username and password, or nothing; each a string that can
    travel in a request header (see CREDENTIAL_RULES). Every entry point calls it before any request or Docker call.

    Raises GluetunConfigError whose message names ``where`` (e.g. the instance) and the field, never a value; its
    ``field`` and ``detail`` (the message after the field's name) let a caller phrase it its own way.
    """
    problems = [(field, credential_problem(field, value))
                for field, value in (("api_key", api_key), ("username", username), ("password", password))]
    problems = [(field, problem) for field, problem in problems if problem]
    if not problems and api_key and (username or password):
        problems.append(("api_key", "cannot be used together with username/password: a Gluetun role authenticates "
                                    "with either an API key (auth = \"apikey\") or basic auth (auth = \"basic\"); give "
                                    "only one of them"))
    if not problems and bool(username) != bool(password):
        problems.append(("password" if username else "username", "is required with %s: username and password must "
                         "be given together (basic auth)" % ("username" if username else "password")))
    if problems:
        field, detail = problems[0]
        error = GluetunConfigError("%s%s %s" % ("%s: " % where if where else "", field, detail))
        error.field, error.detail = field, detail
        raise error


def seconds_problem(value, zero_ok=False, example=None):
    """Why ``value`` is not a usable number of seconds, with the fix; None when it is. NaN, infinity, booleans,
    text and anything below 0 (or 0 itself unless ``zero_ok``) are refused."""
    if zero_ok:
        fix = "use 0 (do not wait) or a number of seconds, e.g. %s" % (example or 30)
    else:
        fix = "use a number of seconds above 0, e.g. %s" % (example or 5)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "%s is not a number; %s" % (repr(value) if isinstance(value, str) else kind_of(value), fix)
    if math.isnan(value) or math.isinf(value):
        return "%s is not a finite number; %s" % (value, fix)
    if value < 0 or (value == 0 and not zero_ok):
        return "%g is %s; %s" % (value, "negative" if value < 0 else "not above 0", fix)
    return None


def check_seconds(value, field, zero_ok=False, example=None):
    """Raise GluetunConfigError naming ``field`` unless ``value`` is a usable number of seconds; returns it as a
    float."""
    problem = seconds_problem(value, zero_ok, example)
    if problem:
        raise GluetunConfigError("%s: %s" % (field, problem))
    return float(value)


class Response(object):
    """One HTTP answer after redirects: status, headers (lower-case names), body bytes, final route."""

    def __init__(self, status, reason, headers, body, url, route):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.url = url
        self.route = route

    def text(self, limit=200):
        text = self.body.decode("utf-8", "replace").strip()
        return text if len(text) <= limit else text[:limit] + "..."


class GluetunClient(object):
    """Talks to one Gluetun control server.

    ``name`` (the container name, for messages), ``api_port`` (the internal port, for messages) and ``hints``
    (extra likely causes found by the caller, e.g. a HTTP_CONTROL_SERVER_ADDRESS that does not match) only
    shape error messages. ``timeout`` bounds each request from the connect to the last byte of the answer (status
    line, headers, body), redirects included.
    """

    def __init__(self, base_url, api_key=None, username=None, password=None, timeout=DEFAULT_TIMEOUT,
                 name=None, api_port=None, hints=None):
        self.base_url = validate_api_url(base_url)
        check_credentials(api_key, username, password)
        self._api_key = api_key or None
        self._basic = None
        if username:
            token = ("%s:%s" % (username, password)).encode("utf-8")
            self._basic = "Basic " + base64.b64encode(token).decode("ascii")
        self.timeout = check_seconds(timeout, "timeout")
        self.name = name
        self.api_port = api_port
        self.hints = list(hints or [])
        self.release = None          # the /v1/version answer, once read
        self.release_asked = False   # whether /v1/version was asked (it may have failed: release stays None)
        self.status_route = None     # the VPN status route that answered
        self.port_route = None       # the port route that answered (after redirects)
        self.last_route = None       # the route of the last answer (after redirects)

    # ------------------------------------------------------------------------------------ messages
    @property
    def credentials_sent(self):
        return "api_key" if self._api_key else "username/password" if self._basic else None

    @property
    def who(self):
        if self.name and self.name != self.base_url:
            return "Gluetun '%s' at %s" % (self.name, self.base_url)
        return "Gluetun at %s" % self.base_url

    def _unreachable_message(self, url, detail):
        """The seed's "Cannot access Gluetun API" with the URL tried and the causes that fit."""
        if self.api_port:
            port = self.api_port
            causes = list(self.hints) + [
                "api_port (GLUETUN_API_PORT, here %s) must be the INTERNAL port of the container's "
                "HTTP_CONTROL_SERVER_ADDRESS (the internal port, not the external one)" % port,
                "the HTTP control server must be enabled: HTTP_CONTROL_SERVER_ADDRESS=:%s in the Gluetun "
                "environment" % port,
                "the port must be exposed: publish it (e.g. \"%s:%s\") or give api_url" % (port, port),
            ]
        else:
            causes = list(self.hints) + [
                "api_url must reach the control server from where this runs: a port the container publishes (the "
                "external port), or its address and internal port on a shared network",
                "the HTTP control server must be enabled and listen on that port (HTTP_CONTROL_SERVER_ADDRESS)",
                "the port must be exposed: publish it on an interface reachable from here",
            ]
        named = " of '%s'" % self.name if self.name and self.name != self.base_url else ""
        return "Cannot access Gluetun API%s at %s: %s. Check: %s." % (
            named, url, detail, "; ".join("%d) %s" % (i + 1, cause) for i, cause in enumerate(causes)))

    def unauthorized_message(self, method, route, also=None):
        """The 401 explanation: which route, which container, and how to allow it (no secret in it)."""
        release = parse_version((self.release or {}).get("version"))
        entry = "%s %s" % (method, route)
        tried = entry + (" (and %s)" % also if also else "")
        if self.credentials_sent:
            what = "the %s sent was refused, or no role of the auth file lists this route" % self.credentials_sent
        else:
            what = "no credentials were sent, and no role without auth covers this route"
        fix = "add \"%s\" to the routes of a role in %s" % (entry, AUTH_FILE)
        if release is None or release >= FIRST_DEFAULT_ROLE_RELEASE:
            fix += (", or (v3.41.0+) set HTTP_CONTROL_SERVER_AUTH_DEFAULT_ROLE="
                    "'{\"auth\":\"apikey\",\"apikey\":\"<key>\"}' for every route the file does not list")
        notes = ""
        if route == ROUTE_PORTFORWARD and (release is None or release >= FIRST_PORTFORWARD_RELEASE):
            notes = " (GET /v1/openvpn/portforwarded redirects here: this route needs its own entry)"
        elif route == ROUTE_OPENVPN_PORTFORWARDED and release is not None and release < FIRST_PORTFORWARD_RELEASE:
            notes = " (not GET /v1/portforward: this release does not know it, and listing it stops Gluetun)"
        return "%s answered 401 Unauthorized for %s: %s. Fix: %s%s; then send that key as api_key (X-API-Key header), " \
               "or username and password for a role with auth = \"basic\"." % (self.who, tried, what, fix, notes)

    # ------------------------------------------------------------------------------------- HTTP
    def _headers(self, body):
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json", "Connection": "close"}
        if self._api_key:
            headers["X-API-Key"] = self._api_key
        if self._basic:
            headers["Authorization"] = self._basic
        if body is not None:
            headers["Content-Type"] = "application/json"
        return headers

    def request(self, method, route, payload=None, timeout=None):
        """Send one request (following same-server redirects with the same credentials); return a Response.

        Raises GluetunUnreachable, GluetunTimeout or GluetunInvalidResponse; HTTP statuses are returned.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else float(timeout))
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        url = self.base_url + route
        origin = _origin(url)
        for _hop in range(MAX_REDIRECTS + 1):
            status, reason, headers, data = self._once(method, url, body, deadline, route)
            location = headers.get("location")
            if status in (301, 302, 303, 307, 308) and location:
                try:
                    target = urljoin(url, location)
                    _origin(target)
                except ValueError:
                    raise GluetunInvalidResponse("%s redirected %s %s to %r, which is not a URL: not followed" % (
                        self.who, method, route, location[:120]), route=route, url=url, status=status)
                if _origin(target) != origin:
                    raise GluetunInvalidResponse(
                        "%s redirected %s %s to another server (%s): not followed, credentials stay with %s" % (
                            self.who, method, route, _origin(target), origin), route=route, url=url, status=status)
                url = target
                if status == 303:
                    method, body = "GET", None
                continue
            return Response(status, reason, headers, data, url, _route_of(url, self.base_url))
        raise GluetunInvalidResponse("%s redirected %s %s more than %d times" % (self.who, method, route, MAX_REDIRECTS),
                                     route=route, url=url)

    def _once(self, method, url, body, deadline, route):
        """One request and its whole answer, within ``deadline`` (time.monotonic()): the connect, the TLS
        handshake, the request, the status line, the headers and every byte of the body. Raises GluetunError only."""
        what = "%s %s" % (method, _route_of(url, self.base_url))
        conn = resp = None
        try:
            parts = urlsplit(url)
            conn = _connection(parts, deadline)
            conn.request(method, parts.path or "/", body=body, headers=self._headers(body))
            resp = conn.getresponse()
            chunks, size = [], 0
            while True:
                chunk = resp.read1(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise GluetunInvalidResponse("%s sent more than %d bytes for %s: not a Gluetun control server?" % (
                        self.who, MAX_BODY_BYTES, what), route=route, url=url)
                chunks.append(chunk)
            headers = dict((k.lower(), v) for k, v in resp.getheaders())
            return resp.status, resp.reason, headers, b"".join(chunks)
        except GluetunError:
            raise
        except (socket.timeout, TimeoutError):
            raise GluetunTimeout("%s did not answer %s within %gs (timeout): the control server hangs, is "
                                 "overloaded or sends its answer too slowly (the timeout bounds the whole answer, "
                                 "from the connect to its last byte)" % (self.who, what, self.timeout),
                                 route=route, url=url)
        except ConnectionRefusedError:
            raise GluetunUnreachable(self._unreachable_message(url, "connection refused"), route=route, url=url)
        except socket.gaierror as exc:
            raise GluetunUnreachable(self._unreachable_message(url, "cannot resolve %s (%s)" % (
                urlsplit(url).hostname, exc.strerror or exc)), route=route, url=url)
        except ssl.SSLError as exc:
            raise GluetunUnreachable("%s: TLS failed for %s: %s" % (self.who, what, exc), route=route, url=url)
        except (http.client.BadStatusLine, http.client.IncompleteRead, ConnectionError) as exc:
            raise GluetunUnreachable(self._unreachable_message(
                url, "the connection closed without an HTTP answer (%s)" % type(exc).__name__), route=route, url=url)
        except http.client.HTTPException as exc:  # a header line too long, too many headers, a redirect to no path
            raise GluetunInvalidResponse("%s: %s cannot be read as a control server's answer (%s): not a Gluetun "
                                         "control server?" % (self.who, what, type(exc).__name__), route=route, url=url)
        except OSError as exc:
            raise GluetunUnreachable(self._unreachable_message(url, exc.strerror or str(exc)), route=route, url=url)
        except Exception as exc:  # pylint: disable=broad-except
            # Whatever else a server's answer could provoke, the callers get a GluetunError (the type only: an
            # exception's text may quote a header, and so a credential).
            raise GluetunInvalidResponse("%s: %s failed on an answer this client cannot read (%s): not a Gluetun "
                                         "control server?" % (self.who, what, type(exc).__name__),
                                         route=route, url=url)
        finally:
            for closable in (resp, conn):
                if closable is not None:
                    try:
                        closable.close()
                    except Exception:  # pylint: disable=broad-except
                        pass

    def get_json(self, route, method="GET", payload=None):
        """200 + JSON body -> the parsed value; any other answer raises a GluetunError naming the route."""
        resp = self.request(method, route, payload)
        self.last_route = resp.route
        if resp.status == 401:
            raise GluetunUnauthorized(self.unauthorized_message(method, resp.route),
                                      route=resp.route, url=resp.url, status=401, method=method)
        if resp.status != 200:
            raise GluetunHTTPError("%s answered HTTP %d %s for %s %s: %s" % (
                self.who, resp.status, resp.reason, method, resp.route, resp.text() or "(empty body)"),
                route=resp.route, url=resp.url, status=resp.status)
        return self._parse(resp, method)

    def _parse(self, resp, method):
        """The JSON value of a 200 answer's body, as Gluetun writes it (UTF-8, at most MAX_JSON_DEPTH levels);
        anything else is a GluetunInvalidResponse naming the container and the route."""
        problem = None
        try:
            text = resp.body.decode("utf-8")
        except UnicodeDecodeError:
            problem = "a body that is not UTF-8 text"
        else:
            if json_nested_deeper_than(text, MAX_JSON_DEPTH):
                problem = "JSON nested more than %d levels deep (a control server answers flat objects)" % (
                    MAX_JSON_DEPTH)
            else:
                try:
                    return json.loads(text)
                except (ValueError, RecursionError):
                    problem = "a body that is not JSON"
        raise GluetunInvalidResponse(
            "%s answered %s %s with %s (HTTP 200, %d bytes: %r): is another service listening on this port (the "
            "orchestrator's own API also uses 8000)?" % (
                self.who, method, resp.route, problem, len(resp.body), resp.text(80)),
            route=resp.route, url=resp.url, status=200)

    def _field(self, data, field, route, types=(str,)):
        if not isinstance(data, dict) or field not in data or not isinstance(data[field], types):
            raise GluetunInvalidResponse("%s answered GET %s without a valid '%s' field: %s" % (
                self.who, route, field, _short(data)), route=route)
        return data[field]

    # ---------------------------------------------------------------------------------- routes
    def version(self):
        """``{"version", "commit", "created"}`` from /v1/version (remembered for route choices)."""
        self.release_asked = True
        data = self.get_json(ROUTE_VERSION)
        self._field(data, "version", ROUTE_VERSION)
        self.release = data
        return data

    @property
    def release_tuple(self):
        return parse_version((self.release or {}).get("version"))

    def vpn_status(self):
        """The VPN status string; /v1/openvpn/status where /v1/vpn/status is absent."""
        routes = [self.status_route] if self.status_route else [ROUTE_VPN_STATUS, ROUTE_OPENVPN_STATUS]
        last = None
        for route in routes:
            try:
                data = self.get_json(route)
            except GluetunHTTPError as exc:
                if exc.status in ROUTE_ABSENT_STATUSES:
                    last = exc
                    continue
                raise
            status = self._field(data, "status", route)
            self.status_route = route
            return status
        raise last

    def set_vpn_status(self, status):
        """PUT the VPN status (``running`` or ``stopped``); returns Gluetun's outcome text."""
        if status not in ("running", "stopped"):
            raise GluetunConfigError("vpn_status must be 'running' or 'stopped', not %r" % (status,))
        route = self.status_route or ROUTE_VPN_STATUS
        data = self.get_json(route, method="PUT", payload={"status": status})
        if isinstance(data, dict) and isinstance(data.get("outcome"), str):
            return data["outcome"]
        return _short(data)

    def public_ip(self):
        """``{"public_ip": str|None, "country": ..., ...}``: empty strings become None."""
        data = self.get_json(ROUTE_PUBLIC_IP)
        if not isinstance(data, dict) or "public_ip" not in data:
            raise GluetunInvalidResponse("%s answered GET %s without a 'public_ip' field: %s" % (
                self.who, ROUTE_PUBLIC_IP, _short(data)), route=ROUTE_PUBLIC_IP)
        wrong = [field for field in ("public_ip",) + PUBLIC_IP_FIELDS
                 if data.get(field) is not None and not isinstance(data[field], str)]
        if wrong:
            raise GluetunInvalidResponse("%s answered GET %s with %s that is not a string: %s" % (
                self.who, ROUTE_PUBLIC_IP, ", ".join("'%s'" % field for field in wrong), _short(data)),
                route=ROUTE_PUBLIC_IP)
        result = {"public_ip": data.get("public_ip") or None}
        for field in PUBLIC_IP_FIELDS:
            value = data.get(field)
            result[field] = value if value not in ("", None) else None
        return result

    def forwarded_ports(self):
        """The forwarded ports ([] when none yet), from /v1/portforward or, where absent, the old route."""
        if self.port_route:
            routes = [self.port_route]
        elif self.release_tuple is not None and self.release_tuple < FIRST_PORTFORWARD_RELEASE:
            routes = [ROUTE_OPENVPN_PORTFORWARDED]
        else:
            routes = [ROUTE_PORTFORWARD, ROUTE_OPENVPN_PORTFORWARDED]
        first_error = None
        for index, route in enumerate(routes):
            fallback_left = index + 1 < len(routes)
            try:
                data = self.get_json(route)
            except GluetunUnauthorized as exc:
                # Up to v3.41.1 an unknown route is 401 as well: try the old route before concluding.
                if fallback_left and self.release_tuple is None:
                    first_error = exc
                    continue
                if first_error is not None and exc.route == first_error.route:
                    raise first_error
                if first_error is not None:
                    raise GluetunUnauthorized(self.unauthorized_message("GET", first_error.route, also=exc.entry),
                                              route=first_error.route, url=first_error.url, status=401)
                raise
            except GluetunHTTPError as exc:
                if fallback_left and exc.status in ROUTE_ABSENT_STATUSES:
                    first_error = exc
                    continue
                if isinstance(first_error, GluetunUnauthorized) and exc.status in ROUTE_ABSENT_STATUSES:
                    raise first_error
                raise
            try:
                ports = ports_from_answer(data)
            except ValueError as exc:
                raise GluetunInvalidResponse("%s answered GET %s with an unexpected port answer (%s): %s" % (
                    self.who, route, exc, _short(data)), route=route)
            self.port_route = self.last_route or route
            return ports
        raise first_error  # pragma: no cover - the loop always returns or raises


def _remaining(deadline):
    """The seconds left before ``deadline`` (time.monotonic()); socket.timeout once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout()
    return left


# ------------------------------------------------------------------------------ one deadline per request
def _connect(address, deadline):
    """A TCP connection to ``address`` (host, port): each address the name resolves to is tried with only the time
    left, and the socket keeps the time left as its timeout, which bounds the TLS handshake and the request."""
    host, port = address
    last = None
    for family, _kind, _proto, _name, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        where = sockaddr[0]
        if family == socket.AF_INET6 and len(sockaddr) > 3 and sockaddr[3]:
            where = "%s%%%d" % (where, sockaddr[3])  # a link-local address keeps its interface
        try:
            sock = socket.create_connection((where, sockaddr[1]), _remaining(deadline))
        except (socket.timeout, TimeoutError):
            raise
        except OSError as exc:
            last = exc
            continue
        try:
            sock.settimeout(_remaining(deadline))
        except BaseException:
            sock.close()
            raise
        return sock
    raise last if last is not None else OSError("%s resolves to no address" % host)


class _DeadlineReader(io.RawIOBase):
    """The raw stream an HTTP answer is read from: every read of the socket gets only the time left before the
    request's deadline, and none is started once it has passed (socket.timeout). A server that sends one byte at a
    time cannot stretch the status line, the headers or the body (chunked or not) past the deadline."""

    def __init__(self, sock, deadline):
        super(_DeadlineReader, self).__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)  # holds the socket open until this stream is closed
        self._deadline = deadline

    def readable(self):
        return True

    def readinto(self, buffer):
        self._sock.settimeout(_remaining(self._deadline))
        return self._raw.readinto(buffer)

    def close(self):
        if not self.closed:
            self._raw.close()
        super(_DeadlineReader, self).close()


class _DeadlineSocket(object):
    """What an http.client.HTTPResponse is given in place of the socket: it only calls makefile()."""

    def __init__(self, sock, deadline):
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode="rb", *_args, **_kwargs):
        if mode != "rb":
            raise ValueError("an answer is only read")
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))


class _Connection(http.client.HTTPConnection):
    """An HTTP connection held to one deadline (``deadline``, set by _connection()), from the connect to the last
    byte of the answer."""

    deadline = None

    def connect(self):
        self.sock = _connect((self.host, self.port), self.deadline)

    def deadline_response(self, sock, *args, **kwargs):
        """The response_class: an HTTPResponse that reads through a _DeadlineReader."""
        return http.client.HTTPResponse(_DeadlineSocket(sock, self.deadline), *args, **kwargs)


class _TLSConnection(http.client.HTTPSConnection, _Connection):
    """The same over TLS: HTTPSConnection.connect() wraps the socket _Connection.connect() made, whose timeout (the
    time left) bounds the handshake."""


def _connection(parts, deadline):
    """The connection for a URL's parts (urlsplit), held to ``deadline``."""
    conn_class = _TLSConnection if parts.scheme == "https" else _Connection
    conn = conn_class(parts.hostname, parts.port, timeout=_remaining(deadline))
    conn.deadline = deadline
    conn.response_class = conn.deadline_response
    return conn


# ------------------------------------------------------------------------------------------ JSON bodies
_JSON_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_BRACKET_RE = re.compile(r"[\[\]{}]")


def json_nested_deeper_than(text, limit):
    """True when the JSON ``text`` opens more than ``limit`` arrays or objects inside each other (brackets inside
    strings do not count). Linear, without recursion: it decides before a parser would recurse."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _JSON_BRACKET_RE.finditer(_JSON_STRING_RE.sub("", text)):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _origin(url):
    parts = urlsplit(url)
    return "%s://%s" % (parts.scheme, parts.netloc.lower())


def _route_of(url, base_url):
    base_path = urlsplit(base_url).path.rstrip("/")
    path = urlsplit(url).path
    return path[len(base_path):] if base_path and path.startswith(base_path) else path


def _short(data, limit=120):
    text = json.dumps(data, sort_keys=True) if not isinstance(data, str) else data
    return text if len(text) <= limit else text[:limit] + "..."
