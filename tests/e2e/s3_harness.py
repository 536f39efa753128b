"""The S3 side of the e2e harness: s3rver (the npm package, a real
S3-compatible server) behind a SigV4 gate.

s3rver checks that the access key exists but not SigV4 signatures, so the gate
in front of it does what S3 does: it recomputes every request's AWS Signature
Version 4 from the secret key (canonical request, string to sign, signing key),
checks the credential scope (date, region, service), that host and every
x-amz-* header are signed, and that x-amz-content-sha256 is the body's SHA-256.
A mismatch is S3's 403 SignatureDoesNotMatch / InvalidAccessKeyId XML. The gate
counts requests by method and kind (object, index marker, bucket), can be
stopped and restarted on the same port (the store down / back), and can damage
object bodies on GET (truncated, corrupted) to check that nothing partial is served.
"""

import hashlib
import hmac
import http.client
import json
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
NODE_MODULES = os.environ.get("NIC_NODE_MODULES", os.path.join(ROOT, "node_modules"))
ACCESS_KEY = "S3RVER"  # the one key s3rver knows
SECRET_KEY = "nic-e2e-secret-key"
REGION = "us-east-1"
BUCKET = "nic-e2e"


def available():
    return os.path.isfile(os.path.join(NODE_MODULES, "s3rver", "package.json"))


class S3rver:
    """node tests/e2e/s3rver_run.cjs on 127.0.0.1 with a free port and a temp directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="nic-s3rver-")
        env = dict(os.environ, NIC_NODE_MODULES=NODE_MODULES)
        self.proc = subprocess.Popen(["node", os.path.join(HERE, "s3rver_run.cjs"), self.dir, BUCKET],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.proc.kill()
            raise RuntimeError(f"s3rver did not start (exit {self.proc.poll()})")
        self.port = json.loads(line)["port"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- SigV4

def _uri_encode(text, safe="-_.~"):
    return quote(text, safe=safe)


def canonical_query(raw):
    pairs = []
    for piece in raw.split("&") if raw else []:
        if not piece:
            continue
        name, _, value = piece.partition("=")
        pairs.append((_uri_encode(unquote(name)), _uri_encode(unquote(value))))
    pairs.sort()
    return "&".join(f"{n}={v}" for n, v in pairs)


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret, date, region, service):
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def verify_sigv4(method, raw_path, raw_query, headers, body, access_key, secret, region):
    """None when the request is signed correctly, else (S3 error code, message)."""
    auth = headers.get("authorization", "")
    m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*"
                     r"SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})", auth)
    if not m:
        return "AccessDenied", f"missing or malformed SigV4 Authorization: {auth!r}"
    key, date, scope_region, service, signed, signature = m.groups()
    if key != access_key:
        return "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
    amz_date = headers.get("x-amz-date", "")
    if not amz_date.startswith(date) or scope_region != region or service != "s3":
        return "AuthorizationHeaderMalformed", f"bad credential scope {date}/{scope_region}/{service} ({amz_date})"
    signed_list = signed.split(";")
    if signed_list != sorted(signed_list) or "host" not in signed_list:
        return "AccessDenied", "SignedHeaders must be sorted and include host"
    for name in signed_list:
        if name not in headers:
            return "AccessDenied", f"signed header {name} is not in the request"
    for name in headers:
        if name.startswith("x-amz-") and name not in signed_list:
            return "AccessDenied", f"header {name} is not signed"
    payload = headers.get("x-amz-content-sha256", "")
    if "x-amz-content-sha256" not in signed_list:
        return "InvalidRequest", "x-amz-content-sha256 missing or not signed"
    if payload != hashlib.sha256(body).hexdigest():
        return "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match the body"
    canonical_headers = "".join(f"{n}:{' '.join(headers.get(n, '').split())}\n" for n in signed_list)
    creq = "\n".join([method, raw_path, canonical_query(raw_query), canonical_headers, signed, payload])
    scope = f"{date}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    expected = hmac.new(signing_key(secret, date, region, "s3"), to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "SignatureDoesNotMatch", ("The request signature we calculated does not match the signature you "
                                         "provided. Check your key and signing method.")
    return None


# ---------------------------------------------------------------- the gate

OBJECT_RE = re.compile(r"^/[^/]+/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}$")
INDEX_RE = re.compile(r"^/[^/]+/index/")


def kind_of(path):
    if OBJECT_RE.match(path):
        return "object"
    if INDEX_RE.match(path):
        return "index"
    return "bucket"


class Gate:
    def __init__(self, backend_port, secret=SECRET_KEY, port=0):
        self.backend_port = backend_port
        self.secret = secret
        self.lock = threading.Lock()
        self.counts = {}
        self.rejected = []
        self.fault = None  # None | "truncate" | "corrupt" (object GETs)
        self.server = None
        self.port = port
        self.start()

    def start(self):
        gate = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                raw_path, _, raw_query = self.path.partition("?")
                headers = {k.lower(): v for k, v in self.headers.items()}
                kind = kind_of(raw_path)
                with gate.lock:
                    gate.counts[(self.command, kind)] = gate.counts.get((self.command, kind), 0) + 1
                problem = verify_sigv4(self.command, raw_path, raw_query, headers, body, ACCESS_KEY, gate.secret,
                                       REGION)
                if problem:
                    with gate.lock:
                        gate.rejected.append((self.command, self.path, problem))
                    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{problem[0]}</Code>'
                           f"<Message>{problem[1]}</Message></Error>").encode()
                    self.reply(403, [("Content-Type", "application/xml")], xml)
                    return
                conn = http.client.HTTPConnection("127.0.0.1", gate.backend_port, timeout=30)
                try:
                    fwd = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "expect")}
                    conn.request(self.command, self.path, body=body if body or self.command == "PUT" else None,
                                 headers=fwd)
                    r = conn.getresponse()
                    data = r.read()
                    out = [(k, v) for k, v in r.getheaders()
                           if k.lower() not in ("transfer-encoding", "connection", "content-length", "date")]
                    status = r.status
                finally:
                    conn.close()
                fault = gate.fault
                if self.command == "GET" and kind == "object" and status == 200 and fault:
                    if fault == "corrupt":
                        data = bytes([data[0] ^ 0xFF]) + data[1:]
                    elif fault == "truncate":
                        self.send_response(200)
                        for k, v in out:
                            self.send_header(k, v)
                        self.send_header("Content-Length", str(len(data)))
                        self.send_header("Connection", "close")
                        self.end_headers()
                        self.wfile.write(data[: len(data) // 2])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                self.reply(status, out, data)

            def reply(self, status, headers, data):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_DELETE = do_HEAD = do_POST = handle_any

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        """The store goes away: the port refuses connections."""
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def restart(self):
        for _ in range(50):
            try:
                self.start()
                return
            except OSError:
                time.sleep(0.1)
        self.start()

    def reset(self):
        with self.lock:
            self.counts = {}
            self.rejected = []
        self.fault = None

    def count(self, method, kind=None):
        with self.lock:
            return sum(v for (m, k), v in self.counts.items() if m == method and (kind is None or k == kind))

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def list_bucket(gate, prefix=""):
    """Object names in the bucket (read straight from s3rver, not counted).
    s3rver's file backend answers a listing that races an object being written
    with 500 InternalError now and then: that listing is asked again."""
    for attempt in range(5):
        conn = http.client.HTTPConnection("127.0.0.1", gate.backend_port, timeout=30)
        try:
            conn.request("GET", f"/{BUCKET}?list-type=2&max-keys=1000&prefix={quote(prefix, safe='')}")
            r = conn.getresponse()
            xml = r.read().decode()
        finally:
            conn.close()
        if r.status == 200:
            return re.findall(r"<Key>([^<]*)</Key>", xml)
        assert r.status == 500 and attempt < 4, xml
        time.sleep(0.1)


def start_stack(fakes_factory):
    """What an S3 suite's module starts: the fakes (Notion + file host), s3rver
    and the SigV4 gate in front of it, as (fakes, s3rver, gate)."""
    fakes = fakes_factory()
    server = S3rver()
    return fakes, server, Gate(server.port)


def stop_all(*parts):
    """Stops what start_stack started (None for what never started)."""
    for part in parts:
        if part:
            part.stop()
