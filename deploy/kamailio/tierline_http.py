"""Tierline HTTP transport for Kamailio's app_python3 (loaded by kamailio.cfg).

Why this exists: Debian bookworm ships Kamailio 5.6, whose http_client module has no
`timeout_mode`: its only timeout, `connection_timeout`, is whole seconds (libcurl
CURLOPT_TIMEOUT), so the least it can promise is "about 1 s", never "under 1 s". This
file moves the bytes of one Tierline request with a hard *total* deadline in
milliseconds instead (connect + send + every read count against one clock), keeping one
keep-alive connection per Kamailio worker. It does not interpret the answer: the
routing script parses the JSON with the jansson module, whichever transport is used.

Called from the script as
    python_exec("tl_http", "<base-url>|<timeout-ms>|<path>")
with the request body in $var(tl_req). Sets
    $var(tl_code)  HTTP status, or -1 (connection refused / reset / not HTTP),
                   -2 (deadline passed)
    $var(tl_resp)  the response body ("" when there is none)
    $var(tl_err)   a short reason when tl_code < 0
Only POST is used by kamailio.cfg; the method could be added to the arguments. If the
environment variable TIERLINE_API_TOKEN is set (Kamailio's environment, e.g. through
/etc/default/kamailio), every request carries it as a bearer token.
Standard library only; nothing here runs at import time except definitions.
"""

import contextlib
import os
import socket
import time

import KSR  # provided by app_python3 inside Kamailio

MAX_RESPONSE = 65536  # Tierline's answers are a few hundred bytes; refuse floods


class _Deadline(Exception):
    pass


class _Broken(Exception):
    pass


def _parse_base(base):
    if not base.startswith("http://"):
        raise ValueError(f"only http:// URLs are supported: {base!r}")
    rest = base[len("http://") :].rstrip("/")
    hostport, _, prefix = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    if not host:
        host, port = hostport, "80"
    host = host.strip("[]")
    return host, int(port), ("/" + prefix if prefix else ""), hostport


class kamailio:  # the class name of app_python3's examples; any name returned by mod_init works
    def __init__(self):
        # Tierline's API token, if it has one (the same variable `tierline serve` reads);
        # from the environment, so it shows in no command line and no config file
        self.token = os.environ.get("TIERLINE_API_TOKEN", "").strip()
        self.sock = None
        self.base = None
        self.target = None

    def child_init(self, rank):
        return 0

    # -- plumbing -----------------------------------------------------------------
    def _close(self):
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None

    def _remaining(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Deadline()
        return left

    def _connect(self, deadline):
        host, port = self.target[0], self.target[1]
        try:
            sock = socket.create_connection((host, port), timeout=self._remaining(deadline))
        except TimeoutError:
            raise _Deadline() from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock

    def _exchange(self, request, deadline):
        """Send one request on self.sock, read one response. Returns (code, body)."""
        sock = self.sock
        try:
            sock.settimeout(self._remaining(deadline))
            sock.sendall(request)
            buf = b""
            while b"\r\n\r\n" not in buf:
                sock.settimeout(self._remaining(deadline))
                chunk = sock.recv(8192)
                if not chunk:
                    raise _Broken("closed before headers" if not buf else "truncated headers")
                buf += chunk
                if len(buf) > MAX_RESPONSE:
                    raise _Broken("headers too large")
        except TimeoutError:
            raise _Deadline() from None
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = lines[0].split(None, 2)
        if len(status) < 2 or not status[0].startswith(b"HTTP/1.") or not status[1].isdigit():
            raise _Broken("not an HTTP response")
        code = int(status[1])
        length = None
        chunked = False
        keep = status[0] == b"HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip().lower()
            if name == b"content-length":
                if not value.isdigit():
                    raise _Broken("bad content-length")
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                chunked = True
            elif name == b"connection":
                keep = value == b"keep-alive" or (keep and value != b"close")
        try:
            if chunked:
                body = self._read_chunked(body, deadline)
            elif length is not None:
                if length > MAX_RESPONSE:
                    raise _Broken("body too large")
                while len(body) < length:
                    sock.settimeout(self._remaining(deadline))
                    chunk = sock.recv(length - len(body))
                    if not chunk:
                        raise _Broken("truncated body")
                    body += chunk
                body = body[:length]
            elif code in (204, 304) or 100 <= code < 200:
                body = b""
            else:  # body runs to connection close
                keep = False
                while True:
                    sock.settimeout(self._remaining(deadline))
                    chunk = sock.recv(8192)
                    if not chunk:
                        break
                    body += chunk
                    if len(body) > MAX_RESPONSE:
                        raise _Broken("body too large")
        except TimeoutError:
            raise _Deadline() from None
        if not keep:
            self._close()
        return code, body

    def _read_chunked(self, data, deadline):
        out = b""
        sock = self.sock
        while True:
            while b"\r\n" not in data:
                sock.settimeout(self._remaining(deadline))
                chunk = sock.recv(8192)
                if not chunk:
                    raise _Broken("truncated chunk")
                data += chunk
            size_line, _, data = data.partition(b"\r\n")
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _Broken("bad chunk size") from None
            if size == 0:
                return out  # trailers, if any, are left unread; the connection is dropped
            while len(data) < size + 2:
                sock.settimeout(self._remaining(deadline))
                chunk = sock.recv(8192)
                if not chunk:
                    raise _Broken("truncated chunk")
                data += chunk
            out += data[:size]
            data = data[size + 2 :]
            if len(out) > MAX_RESPONSE:
                raise _Broken("body too large")

    def _post(self, base, timeout_ms, path, body):
        deadline = time.monotonic() + timeout_ms / 1000.0
        if base != self.base:
            self._close()
            self.base = base
            self.target = _parse_base(base)
        _host, _port, prefix, hostport = self.target
        data = body.encode("utf-8")
        request = (
            f"POST {prefix}{path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nContent-Length: {len(data)}\r\nConnection: keep-alive\r\n"
            "User-Agent: kamailio-tierline\r\n"
            + (f"Authorization: Bearer {self.token}\r\n" if self.token else "")
            + "\r\n"
        ).encode("latin-1") + data
        for attempt in (1, 2):
            reused = self.sock is not None
            try:
                if self.sock is None:
                    self._connect(deadline)
                return self._exchange(request, deadline)
            except _Broken as exc:
                self._close()
                # A kept-alive connection the server had already closed fails at once
                # with nothing read: that request never reached Tierline, so it is safe
                # to send it once more on a fresh connection (within the same deadline).
                if attempt == 1 and reused and str(exc) == "closed before headers":
                    continue
                raise
            except (ConnectionError, OSError) as exc:
                self._close()
                if attempt == 1 and reused and isinstance(exc, (BrokenPipeError, ConnectionResetError)):
                    continue
                raise _Broken(exc.strerror or exc.__class__.__name__) from None
        raise _Broken("unreachable")

    # -- the function the routing script calls ---------------------------------------
    def tl_http(self, msg, args):
        code, resp, err = -1, "", ""
        try:
            base, timeout_ms, path = args.split("|", 2)
            body = KSR.pv.get("$var(tl_req)")
            if not isinstance(body, str):
                body = "{}"
            code, raw = self._post(base, int(timeout_ms), path, body)
            resp = raw.decode("utf-8", "replace")
        except _Deadline:
            self._close()
            code, err = -2, "timeout"
        except _Broken as exc:
            self._close()
            code, err = -1, str(exc)
        except Exception as exc:  # never let a Python error drop a call
            self._close()
            code, err = -1, f"{exc.__class__.__name__}: {exc}"
        KSR.pv.seti("$var(tl_code)", code)
        KSR.pv.sets("$var(tl_resp)", resp)
        KSR.pv.sets("$var(tl_err)", err)
        return 1


def mod_init():
    return kamailio()
