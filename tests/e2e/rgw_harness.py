"""A real S3 server for the tests: Ceph's radosgw (Debian packages radosgw,
ceph-mon, ceph-osd, ceph-common), started here on loopback.

One monitor (msgr v2 only, on a free port) and one OSD with the in-memory
`memstore` backend, no cephx, no mgr; radosgw's beast frontend on another free
port, a user with known keys and one bucket. Start-up takes a few seconds (the
paxos settings below; with Ceph's defaults it takes ~15 s). radosgw checks
SigV4 signatures and conditional PUTs itself.

Requests are counted from radosgw's own access log (debug_rgw 1 writes one
"beast: ... \"PUT /bucket/object HTTP/1.1\" 200 ..." line per request); a
marker request makes sure every earlier line has been written before counting.
radosgw can be stopped (SIGKILL: nothing listens on its port) and started again
on the same port while the cluster keeps the data.

Python standard library only; SigV4 signing for the test's own requests
(listing, filling the bucket) comes from s3_harness.
"""

import hashlib
import hmac
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import quote

import s3_harness

ACCESS_KEY = "NICRGWTESTKEY"
SECRET_KEY = "nic-rgw-test-secret"
REGION = "us-east-1"  # radosgw accepts any region in the credential scope of its default zonegroup
BUCKET = "nic-rgw"
BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph")

ACCESS_RE = re.compile(r'beast: \S+: \S+ - \S+ \[[^\]]*\] "(\w+) (\S+) HTTP/[\d.]+" (\d{3}) ')
OBJECT_RE = re.compile(r"^/[^/]+/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}$")
INDEX_RE = re.compile(r"^/[^/]+/index/")


def available():
    """None when every binary is installed, else what is missing."""
    missing = [b for b in BINARIES if shutil.which(b) is None]
    return None if not missing else "missing " + ", ".join(missing) + " (scripts/deps.sh installs them)"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kind_of(path):
    path = path.partition("?")[0]
    if OBJECT_RE.match(path):
        return "object"
    if INDEX_RE.match(path):
        return "index"
    return "bucket"


class Rgw:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="nic-rgw-")
        self.mon_port = free_port()
        self.port = free_port()
        self.procs = {}
        self.rgw = None
        self.lock = threading.Lock()
        self.log_offset = 0
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    # ------------------------------------------------------------ cluster

    def _conf(self):
        d = self.dir
        return f"""[global]
fsid = {uuid.uuid4()}
mon host = v2:127.0.0.1:{self.mon_port}
mon initial members = a
public addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
keyring = /dev/null
osd objectstore = memstore
memstore device bytes = 1073741824
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail crit = 1
mon data avail warn = 2
paxos propose interval = 0.05
paxos min wait = 0.01
run dir = {d}/run
admin socket = {d}/run/$name.asok
pid file = {d}/run/$name.pid
log file = {d}/log/$name.log
mon data = {d}/mon/$id
osd data = {d}/osd/$id
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:{self.port}
rgw data = {d}/rgw
debug rgw = 1
"""

    def _run(self, *args, timeout=60):
        p = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({p.returncode}): {p.stderr[-2000:]}")
        return p.stdout

    def _daemon(self, name, *args):
        log = open(os.path.join(self.dir, "log", name + ".out"), "wb")
        self.procs[name] = subprocess.Popen(list(args), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        log.close()
        return self.procs[name]

    def _start(self):
        for sub in ("run", "log", "mon/a", "osd/0", "rgw"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self.conf = os.path.join(self.dir, "ceph.conf")
        with open(self.conf, "w") as f:
            f.write(self._conf())
        fsid = re.search(r"fsid = (\S+)", self._conf_text()).group(1)
        monmap = os.path.join(self.dir, "monmap")
        self._run("monmaptool", "--create", "--add", "a", f"v2:127.0.0.1:{self.mon_port}", "--fsid", fsid, monmap)
        self._run("ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap, "-c", self.conf)
        self._daemon("mon", "ceph-mon", "-f", "-i", "a", "-c", self.conf)
        osd_id = self._run("ceph", "-c", self.conf, "--connect-timeout", "30", "osd", "create").strip()
        if osd_id != "0":
            raise RuntimeError(f"unexpected OSD id {osd_id!r}")
        self._run("ceph-osd", "-i", "0", "--mkfs", "-c", self.conf)
        self._daemon("osd", "ceph-osd", "-f", "-i", "0", "-c", self.conf)
        self._wait(lambda: "1 up" in self._run("ceph", "-c", self.conf, "osd", "stat"), 60, "the OSD to come up")
        self.start_rgw()
        self._run("radosgw-admin", "-c", self.conf, "user", "create", "--uid=nic", "--display-name=nic",
                  f"--access-key={ACCESS_KEY}", f"--secret-key={SECRET_KEY}")
        r = self.request("PUT", f"/{BUCKET}")
        if r.status != 200:
            raise RuntimeError(f"bucket creation: {r.status} {r.body[:500]!r}")

    def _conf_text(self):
        with open(self.conf) as f:
            return f.read()

    def _wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            for name, p in self.procs.items():
                if p is not None and p.poll() is not None:
                    raise RuntimeError(f"{name} exited ({p.returncode}) while waiting for {what}: "
                                       f"{self._tail(name)}")
            try:
                if predicate():
                    return
            except (OSError, RuntimeError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def _tail(self, name):
        try:
            with open(os.path.join(self.dir, "log", name + ".out"), errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def start_rgw(self):
        """radosgw on self.port (again, after stop_rgw)."""
        self.procs["rgw"] = self.rgw = self._daemon("rgw", "radosgw", "-f", "-n", "client.rgw", "-c", self.conf)
        self._wait(lambda: self._anonymous_get() == 200, 90, "radosgw to answer")

    def _anonymous_get(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", "/")
            r = conn.getresponse()
            r.read()
            return r.status
        finally:
            conn.close()

    def stop_rgw(self):
        """S3 goes away: radosgw is killed, its port refuses connections."""
        if self.rgw is not None and self.rgw.poll() is None:
            self.rgw.kill()
            self.rgw.wait()
        self.procs["rgw"] = self.rgw = None

    def stop(self):
        # memstore keeps nothing on disk: SIGKILL is safe and quick (an OSD takes ~5 s on SIGTERM).
        for name in ("rgw", "osd", "mon"):
            p = self.procs.get(name)
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
        self.procs = {}
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------ S3 requests of the test itself

    def request(self, method, path, query="", body=b"", headers=None, secret=SECRET_KEY, conn=None):
        """One SigV4-signed request; `query` canonical (sorted, encoded)."""
        now = datetime.now(timezone.utc)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        date = amz_date[:8]
        payload = hashlib.sha256(body).hexdigest()
        hdrs = {"host": f"127.0.0.1:{self.port}", "x-amz-date": amz_date, "x-amz-content-sha256": payload}
        for k, v in (headers or {}).items():
            hdrs[k.lower()] = v
        signed = sorted(hdrs)
        canonical_headers = "".join(f"{n}:{hdrs[n].strip()}\n" for n in signed)
        creq = "\n".join([method, path, query, canonical_headers, ";".join(signed), payload])
        scope = f"{date}/{REGION}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
        key = s3_harness.signing_key(secret, date, REGION, "s3")
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        hdrs["authorization"] = (f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, "
                                 f"SignedHeaders={';'.join(signed)}, Signature={signature}")
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path + ("?" + query if query else ""), body=body if body or method == "PUT" else None,
                         headers=hdrs)
            r = conn.getresponse()
            return _Reply(r.status, r.read())
        finally:
            if own:
                conn.close()

    def list(self, prefix=""):
        """Every object name under prefix (all pages: radosgw returns at most 1000 a page)."""
        names, token = [], None
        while True:
            q = (f"continuation-token={_enc(token)}&" if token else "") + f"list-type=2&prefix={_enc(prefix)}"
            r = self.request("GET", f"/{BUCKET}", q)
            assert r.status == 200, r.body
            xml = r.body.decode()
            names += [_unescape(k) for k in re.findall(r"<Key>([^<]*)</Key>", xml)]
            m = re.search(r"<NextContinuationToken>([^<]*)</NextContinuationToken>", xml)
            if "<IsTruncated>true</IsTruncated>" not in xml or not m:
                return names
            token = _unescape(m.group(1))

    def put_many(self, names, body=b"", threads=4):
        """PUTs an object per name (keep-alive connections, a few in parallel)."""
        names = list(names)
        errors = []

        def worker(chunk):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                for n in chunk:
                    r = self.request("PUT", f"/{BUCKET}/{n}", body=body, conn=conn)
                    if r.status != 200:
                        errors.append((n, r.status))
            finally:
                conn.close()

        ts = [threading.Thread(target=worker, args=(names[i::threads],)) for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors, errors[:5]

    # ------------------------------------------------------------ the access log

    def _log_lines(self):
        with open(os.path.join(self.dir, "log", "client.rgw.log"), errors="replace") as f:
            f.seek(self.log_offset)
            return f.read().splitlines()

    def sync_log(self):
        """Waits until radosgw has logged every request made before this call."""
        marker = f"/{BUCKET}/nic-log-marker-{uuid.uuid4().hex}"
        self._anonymous(marker)
        self._wait(lambda: any(marker + " " in line for line in self._log_lines()), 30, "radosgw's access log")

    def _anonymous(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("HEAD", path)
            conn.getresponse().read()
        finally:
            conn.close()

    def requests(self):
        """[(method, path, status)] since the last reset_log(), log synced first."""
        self.sync_log()
        out = []
        for line in self._log_lines():
            m = ACCESS_RE.search(line)
            if m and "nic-log-marker-" not in m.group(2):
                out.append((m.group(1), m.group(2), int(m.group(3))))
        return out

    def reset_log(self):
        """Counting starts from here."""
        self.sync_log()
        path = os.path.join(self.dir, "log", "client.rgw.log")
        self.log_offset = os.path.getsize(path)

    def count(self, method, kind=None, status=None, path=None):
        return sum(1 for m, p, s in self.requests()
                   if m == method and (kind is None or kind_of(p) == kind) and (status is None or s == status)
                   and (path is None or p.partition("?")[0] == path))


class _Reply:
    def __init__(self, status, body):
        self.status = status
        self.body = body


def _enc(text):
    return quote(text, safe="-_.~")


def _unescape(s):
    return (s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'")
            .replace("&amp;", "&"))
