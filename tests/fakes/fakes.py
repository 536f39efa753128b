#!/usr/bin/env python3
"""Stand-ins for the Notion API and Notion's S3 file host, speaking their wire formats.

Started as one process: `python3 fakes.py` prints one JSON line
{"notion": PORT, "s3": PORT} (ports chosen by the OS) and serves until killed.

Fake Notion API (https://developers.notion.com/reference/retrieve-a-block):
  GET /v1/blocks/{id}  with Authorization: Bearer <token> and Notion-Version
    200 block JSON ({"object":"block","type":"image","image":{"type":"file","file":{"url":..,"expiry_time":..}}})
    401/400/404/429 Notion error JSON ({"object":"error","status":..,"code":..,"message":..}); 429 has Retry-After.
Fake S3 (the file host Notion's signed URLs point to):
  GET /{workspace}/{file}/{name}?X-Amz-Algorithm=..&X-Amz-Date=..&X-Amz-Expires=..&X-Amz-Signature=..
    200 the bytes; 403 <Error><Code>AccessDenied</Code><Message>Request has expired</Message>..</Error> once
    X-Amz-Date + X-Amz-Expires has passed; 403 SignatureDoesNotMatch; 404 NoSuchKey; injected faults.
    Fault "redirect": a validly signed request is answered 302 (or redirect_status) with Location:
    `location` as given (absolute or relative), or "self" = the request's own target (a loop).

Control endpoint (on both ports), JSON bodies:
  POST /_control/reset                      forget files, blocks, faults, counters
  POST /_control/files   {"path":"/ws/file/name","data_b64":..,"content_type":..}
  POST /_control/blocks  {"id":..,"workspace":..,"file":..,"name":..,"kind":"file"|"external"|"paragraph",
                          "url_expires":3600,"expiry_time_in":3600,"external_url":..}
  POST /_control/faults  {"s3":{"mode":"500|hang|stall|truncate|nonimage|oversize|redirect|none","count":N,
                                "latency_ms":N,"oversize_bytes":N,
                                "location":URL|"self","redirect_status":302},
                          "notion":{"rate_limit":N,"retry_after":"1","status":N,"count":N,"latency_ms":N,
                                    "mode":"status|hang"}}
                            s3 mode "stall": headers and half the body, the rest once the fault is cleared
                            (counters s3_stalled, then s3_downloads or s3_aborted if the client hung up).
                            notion count -1: every call until reset (an outage); "rate_limit": -1 a 429 storm;
                            mode "hang": hold each call unanswered until the fault is cleared (or 60 s).
                            Revoking the token: POST /_control/tokens {"tokens":[]} (then 401 unauthorized).
  POST /_control/tokens  {"tokens":[..],"version":"2022-06-28"}
  GET  /_control/counters -> {"notion_calls":..,"notion_by_status":{..},"s3_requests":..,"s3_by_status":{..},
                               "s3_downloads":.., "s3_inflight_max":..}
  GET  /_control/sign?path=/ws/file/name&expires=N -> {"url": a signed URL on the fake S3}
"""

import base64
import datetime as dt
import hashlib
import hmac
import json
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SIGNING_SECRET = b"fake-s3-secret"


def dashed(hex32):
    h = hex32.replace("-", "").lower()
    if len(h) != 32:
        return hex32
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def undashed(text):
    return text.replace("-", "").lower()


def iso(ts):
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.s3_port = 0
        self.reset()

    def reset(self):
        with self.lock:
            self.files = {}  # path -> (bytes, content_type)
            self.blocks = {}  # undashed id -> dict
            self.tokens = {"secret_test_token"}
            self.version = "2022-06-28"
            self.s3_fault = {"mode": "none", "count": 0, "latency_ms": 0, "oversize_bytes": 0, "location": "",
                             "redirect_status": 302}
            self.notion_fault = {"rate_limit": 0, "retry_after": "1", "status": 0, "count": 0, "latency_ms": 0,
                                 "mode": "status"}
            self.counters = {
                "notion_calls": 0,
                "notion_by_status": {},
                "notion_by_block": {},
                "s3_requests": 0,
                "s3_by_status": {},
                "s3_by_path": {},
                "s3_downloads": 0,
                "s3_stalled": 0,
                "s3_aborted": 0,
                "s3_inflight": 0,
                "s3_inflight_max": 0,
            }
            self.generation = getattr(self, "generation", 0) + 1

    def count(self, name, key=None, n=1):
        with self.lock:
            if key is None:
                self.counters[name] += n
            else:
                d = self.counters[name]
                d[str(key)] = d.get(str(key), 0) + n

    def sign(self, path, expires, date=None):
        date = date or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        payload = f"{path}\n{date}\n{expires}".encode()
        sig = hmac.new(SIGNING_SECRET, payload, hashlib.sha256).hexdigest()
        cred = urllib.parse.quote(f"ASIAFAKE/{date[:8]}/us-west-2/s3/aws4_request", safe="")
        query = (
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD"
            f"&X-Amz-Credential={cred}&X-Amz-Date={date}&X-Amz-Expires={expires}"
            f"&X-Amz-Signature={sig}&X-Amz-SignedHeaders=host&x-id=GetObject"
        )
        quoted = urllib.parse.quote(path, safe="/")
        return f"http://127.0.0.1:{self.s3_port}{quoted}?{query}"


STATE = State()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AmazonS3"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet
        pass

    # -- helpers
    def send_body(self, status, body, content_type, extra=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b"{}"
        return json.loads(raw or b"{}")

    # -- dispatch
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/_control/"):
            return self.control_get(url)
        if self.server.kind == "notion":
            return self.notion_get(url)
        return self.s3_get(url)

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        if not url.path.startswith("/_control/"):
            return self.send_body(405, "", "text/plain")
        body = self.read_json()
        name = url.path[len("/_control/"):]
        with STATE.lock:
            if name == "files":
                STATE.files[body["path"]] = (base64.b64decode(body["data_b64"]), body.get("content_type", "image/png"))
            elif name == "blocks":
                STATE.blocks[undashed(body["id"])] = body
            elif name == "faults":
                if "s3" in body:
                    STATE.s3_fault.update(body["s3"])
                if "notion" in body:
                    STATE.notion_fault.update(body["notion"])
            elif name == "tokens":
                STATE.tokens = set(body.get("tokens", []))
                STATE.version = body.get("version", STATE.version)
        if name == "reset":
            STATE.reset()
        self.send_body(200, "{}", "application/json")

    def control_get(self, url):
        name = url.path[len("/_control/"):]
        if name == "counters":
            with STATE.lock:
                data = json.dumps(STATE.counters)
            return self.send_body(200, data, "application/json")
        if name == "sign":
            q = urllib.parse.parse_qs(url.query)
            signed = STATE.sign(q["path"][0], int(q.get("expires", ["3600"])[0]), q.get("date", [None])[0])
            return self.send_body(200, json.dumps({"url": signed}), "application/json")
        self.send_body(404, "{}", "application/json")

    # -- Notion API
    def notion_error(self, status, code, message, extra=None):
        STATE.count("notion_by_status", status)
        body = json.dumps({"object": "error", "status": status, "code": code, "message": message,
                           "request_id": str(uuid.uuid4())})
        self.send_body(status, body, "application/json; charset=utf-8", extra)

    def notion_get(self, url):
        STATE.count("notion_calls")
        with STATE.lock:
            fault = dict(STATE.notion_fault)
            if fault["rate_limit"] > 0:
                STATE.notion_fault["rate_limit"] -= 1
            if fault["count"] > 0:
                STATE.notion_fault["count"] -= 1
            tokens = set(STATE.tokens)
            version = STATE.version
            generation = STATE.generation
        if fault["latency_ms"]:
            time.sleep(fault["latency_ms"] / 1000)
        if fault["count"] != 0 and fault.get("mode") == "hang":
            end = time.time() + 60
            while time.time() < end:
                with STATE.lock:
                    if STATE.generation != generation or STATE.notion_fault.get("mode") != "hang":
                        break
                time.sleep(0.05)
            self.close_connection = True
            return
        parts = url.path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "v1" or parts[1] != "blocks":
            return self.notion_error(400, "invalid_request_url", "Invalid request URL.")
        block_id = undashed(parts[2])
        STATE.count("notion_by_block", block_id)
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in tokens:
            return self.notion_error(401, "unauthorized", "API token is invalid.")
        if self.headers.get("Notion-Version") != version:
            return self.notion_error(400, "missing_version", "Notion-Version header failed validation.")
        if fault["rate_limit"] != 0:
            return self.notion_error(429, "rate_limited", "You have been rate limited. Please try again in a few minutes.",
                                     {"Retry-After": str(fault["retry_after"])})
        if fault["count"] != 0 and fault["status"]:
            return self.notion_error(int(fault["status"]), "internal_server_error", "Unexpected error occurred.")
        with STATE.lock:
            block = STATE.blocks.get(block_id)
        if block is None or len(block_id) != 32:
            return self.notion_error(404, "object_not_found",
                                     f"Could not find block with ID: {dashed(block_id)}. Make sure the relevant pages "
                                     "and databases are shared with your integration.")
        now = time.time()
        doc = {
            "object": "block",
            "id": dashed(block_id),
            "parent": {"type": "page_id", "page_id": str(uuid.UUID(int=1))},
            "created_time": iso(now - 86400),
            "last_edited_time": iso(now - 3600),
            "created_by": {"object": "user", "id": str(uuid.UUID(int=2))},
            "last_edited_by": {"object": "user", "id": str(uuid.UUID(int=2))},
            "has_children": False,
            "archived": bool(block.get("archived", False)),
            "in_trash": bool(block.get("archived", False)),
        }
        kind = block.get("kind", "file")
        if kind == "paragraph":
            doc["type"] = "paragraph"
            doc["paragraph"] = {"rich_text": [], "color": "default"}
        elif kind == "external":
            doc["type"] = "image"
            doc["image"] = {"caption": [], "type": "external", "external": {"url": block["external_url"]}}
        else:
            path = f"/{dashed(block['workspace'])}/{dashed(block['file'])}/{block['name']}"
            signed = STATE.sign(path, int(block.get("url_expires", 3600)))
            doc["type"] = "image"
            doc["image"] = {"caption": [], "type": "file",
                            "file": {"url": signed, "expiry_time": iso(now + int(block.get("expiry_time_in", 3600)))}}
        STATE.count("notion_by_status", 200)
        self.send_body(200, json.dumps(doc), "application/json; charset=utf-8")

    # -- S3
    def s3_error(self, status, code, message, extra_xml=""):
        STATE.count("s3_by_status", status)
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{message}</Message>{extra_xml}"
                f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId><HostId>fake</HostId></Error>")
        self.send_body(status, body, "application/xml")

    def s3_get(self, url):
        STATE.count("s3_requests")
        path = urllib.parse.unquote(url.path)
        STATE.count("s3_by_path", path)
        with STATE.lock:
            STATE.counters["s3_inflight"] += 1
            STATE.counters["s3_inflight_max"] = max(STATE.counters["s3_inflight_max"], STATE.counters["s3_inflight"])
            fault = dict(STATE.s3_fault)
            if fault["count"] > 0:
                STATE.s3_fault["count"] -= 1
            generation = STATE.generation
        try:
            self.s3_serve(url, path, fault, generation)
        finally:
            with STATE.lock:
                STATE.counters["s3_inflight"] -= 1

    def s3_serve(self, url, path, fault, generation):
        if fault["latency_ms"]:
            time.sleep(fault["latency_ms"] / 1000)
        q = dict(urllib.parse.parse_qsl(url.query))
        date, expires, sig = q.get("X-Amz-Date"), q.get("X-Amz-Expires"), q.get("X-Amz-Signature")
        if not date or not expires or not sig or q.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
            return self.s3_error(403, "AccessDenied", "Query-string authentication requires the Signature, "
                                 "Expires and AWSAccessKeyId parameters")
        want = hmac.new(SIGNING_SECRET, f"{path}\n{date}\n{expires}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sig):
            return self.s3_error(403, "SignatureDoesNotMatch",
                                 "The request signature we calculated does not match the signature you provided.")
        signed_at = dt.datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc).timestamp()
        if time.time() > signed_at + int(expires):
            return self.s3_error(403, "AccessDenied", "Request has expired",
                                 f"<X-Amz-Expires>{expires}</X-Amz-Expires>"
                                 f"<Expires>{iso(signed_at + int(expires))}</Expires><ServerTime>{iso(time.time())}</ServerTime>")
        active = fault["count"] != 0 and fault["mode"] != "none"
        mode = fault["mode"] if active else "none"
        if mode == "redirect":
            location = self.path if fault["location"] == "self" else fault["location"]
            STATE.count("s3_by_status", int(fault["redirect_status"]))
            return self.send_body(int(fault["redirect_status"]), "", "application/xml", {"Location": location})
        if mode == "500":
            return self.s3_error(500, "InternalError", "We encountered an internal error. Please try again.")
        if mode == "hang":
            # Hold the connection without answering until the fault is reset (or 30 s).
            end = time.time() + 30
            while time.time() < end:
                with STATE.lock:
                    if STATE.generation != generation or STATE.s3_fault["mode"] != "hang":
                        break
                time.sleep(0.05)
            self.close_connection = True
            return
        with STATE.lock:
            entry = STATE.files.get(path)
        if entry is None:
            return self.s3_error(404, "NoSuchKey", "The specified key does not exist.", f"<Key>{path.lstrip('/')}</Key>")
        data, ctype = entry
        if mode == "stall":
            # Headers (with Content-Length) and the first half of the body at
            # once, the rest only when the fault is cleared (or after 30 s).
            STATE.count("s3_by_status", 200)
            STATE.count("s3_stalled")
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                end = time.time() + 30
                while time.time() < end:
                    with STATE.lock:
                        if STATE.generation != generation or STATE.s3_fault["mode"] != "stall":
                            break
                    time.sleep(0.02)
                self.wfile.write(data[len(data) // 2:])
                self.wfile.flush()
                STATE.count("s3_downloads")
            except (BrokenPipeError, ConnectionResetError):
                STATE.count("s3_aborted")
            self.close_connection = True
            return
        if mode == "nonimage":
            STATE.count("s3_by_status", 200)
            return self.send_body(200, "<html><body>Sign in to continue</body></html>", "text/html")
        if mode == "truncate":
            STATE.count("s3_by_status", 200)
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if mode == "oversize":
            # No Content-Length: the body ends when the connection closes, so only
            # counting bytes while streaming can stop it.
            STATE.count("s3_by_status", 200)
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Connection", "close")
            self.end_headers()
            total = int(fault.get("oversize_bytes") or 64 * 1024 * 1024)
            chunk = (data * (65536 // max(1, len(data)) + 1))[:65536]
            sent = 0
            try:
                while sent < total:
                    self.wfile.write(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True
            return
        STATE.count("s3_by_status", 200)
        STATE.count("s3_downloads")
        self.send_body(200, data, ctype, {"ETag": '"' + hashlib.md5(data).hexdigest() + '"',
                                          "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT",
                                          "x-amz-request-id": uuid.uuid4().hex[:16].upper()})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, kind):
        super().__init__(("127.0.0.1", 0), Handler)
        self.kind = kind


def start():
    notion = Server("notion")
    s3 = Server("s3")
    STATE.s3_port = s3.server_address[1]
    for srv in (notion, s3):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    return notion, s3


def main():
    notion, s3 = start()
    print(json.dumps({"notion": notion.server_address[1], "s3": s3.server_address[1]}), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
