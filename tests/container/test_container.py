"""The container image (native/container/Dockerfile), built and started with
podman from Debian (rootful, runc), no registry:

1. a Debian 12 base image from `debootstrap --variant=minbase bookworm` (the
   tarball cached in NIC_CONTAINER_CACHE, re-imported with `podman import`);
2. `podman build --format docker` of the Dockerfile with BASE=that image (the
   build stage runs scripts/deps.sh --origin and cmake for nic-origin);
3. the image's settings (non-root user, HEALTHCHECK, the CACHE_DIR volume);
4. a container on the host network against the fakes (tests/fakes/fakes.py):
   /health, `podman healthcheck run`, an image request (one Notion call, one
   download, the entries on the volume), another instance on the same volume
   serving it from disk;
5. SIGTERM (`podman stop`) while a request is in flight: the request is
   answered, the container exits 0;
6. everything it made is removed (containers, volume, the built image).

podman's settings come from a CONTAINERS_CONF file of the test's own (runc,
cgroupfs, the ulimits), never from /etc. Exit 77 (skipped) only when podman,
runc or debootstrap are missing (scripts/deps.sh installs them).

Environment: NIC_CONTAINER_CACHE (where the base tarball is kept; default
build/container-cache), NIC_CONTAINER_KEEP_IMAGE=1 keeps the built image and
reuses it on the next run (local iteration only).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness as h  # noqa: E402

CACHE = os.environ.get("NIC_CONTAINER_CACHE", os.path.join(ROOT, "build", "container-cache"))
BASE_TAR = os.path.join(CACHE, "bookworm-minbase.tar")
BASE_IMAGE = "localhost/nic-bookworm-minbase:latest"
TAG = f"localhost/nic-origin:test-{os.getpid()}"
KEEP = os.environ.get("NIC_CONTAINER_KEEP_IMAGE") == "1"
if KEEP:
    TAG = "localhost/nic-origin:test-kept"

CONF_DIR = None
FAKES = None


def podman(*args, check=True, timeout=600, capture=True):
    env = dict(os.environ, CONTAINERS_CONF=os.path.join(CONF_DIR, "containers.conf"))
    p = subprocess.run(["podman", *args], env=env, text=True, timeout=timeout,
                       stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None)
    if check and p.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed ({p.returncode}): {(p.stderr or '')[-3000:]}")
    return p


def apt_mirror():
    """The Debian mirror this machine's apt uses (deb822 or one-line sources)."""
    texts = []
    for path in ["/etc/apt/sources.list"] + sorted(
            os.path.join("/etc/apt/sources.list.d", f) for f in os.listdir("/etc/apt/sources.list.d")
            if os.path.isdir("/etc/apt/sources.list.d")):
        try:
            with open(path) as f:
                texts.append(f.read())
        except OSError:
            pass
    for text in texts:
        for m in re.finditer(r"^URIs:\s*(\S+)", text, re.M):
            if "security" not in m.group(1):
                return m.group(1)
        for m in re.finditer(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s", text, re.M):
            return m.group(1)
    return "http://deb.debian.org/debian"


def ensure_base_image():
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return
    if not os.path.isfile(BASE_TAR):
        os.makedirs(CACHE, exist_ok=True)
        rootfs = tempfile.mkdtemp(prefix="nic-debootstrap-", dir=CACHE)
        try:
            p = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", rootfs, apt_mirror()],
                               capture_output=True, text=True, timeout=1200)
            if p.returncode != 0:
                raise RuntimeError(f"debootstrap failed: {p.stdout[-2000:]} {p.stderr[-2000:]}")
            partial = BASE_TAR + ".partial"
            subprocess.run(["tar", "-C", rootfs, "-cf", partial, "."], check=True, timeout=600)
            os.replace(partial, BASE_TAR)
        finally:
            shutil.rmtree(rootfs, ignore_errors=True)
    podman("import", BASE_TAR, BASE_IMAGE)


def build_image():
    if KEEP and podman("image", "exists", TAG, check=False).returncode == 0:
        return
    podman("build", "--format", "docker", "--network=host", "--layers=false", "--build-arg", f"BASE={BASE_IMAGE}",
           "-f", os.path.join(ROOT, "native", "container", "Dockerfile"), "-t", TAG, ROOT, timeout=3000)


def setUpModule():
    global CONF_DIR, FAKES
    missing = [b for b in ("podman", "runc", "debootstrap") if shutil.which(b) is None]
    if missing:
        raise unittest.SkipTest("missing " + ", ".join(missing))
    CONF_DIR = tempfile.mkdtemp(prefix="nic-podman-")
    with open(os.path.join(CONF_DIR, "containers.conf"), "w") as f:
        f.write('[containers]\n'
                'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
                '[engine]\n'
                'runtime = "runc"\n'
                'cgroup_manager = "cgroupfs"\n'
                'events_logger = "file"\n')
    ensure_base_image()
    build_image()
    FAKES = h.Fakes()


def tearDownModule():
    if FAKES:
        FAKES.stop()
    if CONF_DIR:
        if not KEEP:
            podman("rmi", "-f", TAG, check=False)
        shutil.rmtree(CONF_DIR, ignore_errors=True)


class Container:
    """One nic-origin container on the host network, on a free port."""

    def __init__(self, fakes, volume, **env):
        self.name = f"nic-test-{os.getpid()}-{h.new_id()[:8]}"
        self.port = h_free_port()
        settings = {
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "LOG_LEVEL": "info",
            "ALLOWED_DOMAINS": f"http://127.0.0.1:{fakes.s3_port}",
            "NOTION_API_BASE": f"http://127.0.0.1:{fakes.notion_port}",
            "NOTION_TOKEN": h.TOKEN,
            "NOTION_RPS": "1000",
            "API_KEYS": h.API_KEY,
            "WORKER_THREADS": "2",
            "TRANSFORM_CONCURRENCY": "2",
            "SHUTDOWN_TIMEOUT_MS": "20000",
        }
        settings.update({k: str(v) for k, v in env.items()})
        args = ["run", "-d", "--name", self.name, "--network=host", "--health-interval=disable",
                "-v", f"{volume}:/var/cache/nic"]
        for k, v in settings.items():
            args += ["-e", f"{k}={v}"]
        podman(*args, TAG)
        if not h.wait_until(self.ready, timeout=60, step=0.1):
            raise RuntimeError(f"the container did not answer /health: {self.logs()[-3000:]}")

    def ready(self):
        try:
            return h.request(self.port, "GET", "/health", timeout=2).status == 200
        except OSError:
            return False

    def get(self, target, headers=None, method="GET"):
        return h.request(self.port, method, target, headers)

    def logs(self):
        p = podman("logs", self.name, check=False)
        return (p.stdout or "") + (p.stderr or "")

    def state(self):
        return json.loads(podman("inspect", "--format", "{{json .State}}", self.name).stdout)

    def remove(self):
        podman("rm", "-f", "-t", "0", self.name, check=False)


def h_free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ContainerImage(unittest.TestCase):
    def setUp(self):
        FAKES.reset()
        self.volume = f"nic-test-cache-{os.getpid()}-{h.new_id()[:8]}"
        podman("volume", "create", self.volume)
        self.containers = []

    def tearDown(self):
        for c in self.containers:
            c.remove()
        podman("volume", "rm", "-f", self.volume, check=False)

    def container(self, **env):
        c = Container(FAKES, self.volume, **env)
        self.containers.append(c)
        return c

    def test_image_settings(self):
        info = json.loads(podman("image", "inspect", TAG).stdout)[0]
        config = info["Config"]
        self.assertEqual(config["User"], "nic")
        self.assertIn("/var/cache/nic", config.get("Volumes", {}))
        self.assertIn("CACHE_DIR=/var/cache/nic", config["Env"])
        self.assertEqual(config["Entrypoint"], ["/usr/local/bin/nic-origin"])
        healthcheck = info.get("Healthcheck") or config.get("Healthcheck")  # podman puts it at the top
        self.assertIsNotNone(healthcheck, "HEALTHCHECK lost: build with --format docker")
        self.assertIn("/health", " ".join(healthcheck["Test"]))
        self.assertEqual(config.get("StopSignal"), "SIGTERM")
        # Only the run stage: no compiler, no headers, no cmake.
        p = podman("run", "--rm", "--network=host", "--entrypoint", "sh", TAG, "-c",
                   "command -v c++ cmake ninja || true; ls /usr/include/boost 2>/dev/null | wc -l; id -u",
                   check=True)
        self.assertEqual(p.stdout.split(), ["0", "10001"])
        v = podman("run", "--rm", "--network=host", TAG, "--version")
        self.assertTrue(v.stdout.startswith("nic-origin "), v.stdout)

    def test_serves_images_health_and_volume(self):
        c = self.container()
        health = c.get("/health")
        self.assertEqual((health.status, health.json()["status"]), (200, "ok"))
        self.assertEqual(podman("healthcheck", "run", c.name, check=False).returncode, 0)
        self.assertEqual(podman("exec", c.name, "id", "-un").stdout.strip(), "nic")

        ws, block, _, name = FAKES.image(h.png(640, 480))
        r = c.get(f"/img/{ws}/{block}/{name}?w=256")
        self.assertEqual((r.status, h.measure(r.body)), (200, ("png", 256, 192)), r.body[:300])
        self.assertEqual(r.header("x-cache-tier"), "ORIGIN")
        counters = FAKES.counters()
        self.assertEqual((counters["notion_calls"], counters["s3_downloads"]), (1, 1))
        # The source and the variant are on the volume.
        files = podman("exec", c.name, "find", "/var/cache/nic", "-name", "*.bin").stdout.split()
        self.assertEqual(len(files), 2, files)
        c.remove()
        self.containers.remove(c)

        # A new container on the same volume serves it from disk, without upstream traffic.
        FAKES.reset()
        d = self.container()
        again = d.get(f"/img/{ws}/{block}/{name}?w=256")
        self.assertEqual((again.status, again.header("x-cache-tier"), again.body), (200, "STORAGE", r.body))
        counters = FAKES.counters()
        self.assertEqual((counters["notion_calls"], counters["s3_requests"]), (0, 0))

    def test_sigterm_drains_the_request_in_flight(self):
        c = self.container()
        ws, block, _, name = FAKES.image(h.png(320, 240, seed=4))
        FAKES.faults(s3={"latency_ms": 3000})
        result = []
        t = threading.Thread(target=lambda: result.append(c.get(f"/img/{ws}/{block}/{name}?w=128")))
        t.start()
        self.assertTrue(h.wait_until(lambda: FAKES.counters()["s3_requests"] >= 1, timeout=30))
        stop = podman("stop", "-t", "60", c.name)  # SIGTERM, then waits for the exit
        t.join()
        self.assertEqual(stop.returncode, 0)
        self.assertEqual(len(result), 1)
        self.assertEqual((result[0].status, h.measure(result[0].body)), (200, ("png", 128, 96)))
        state = c.state()
        self.assertEqual((state["Status"], state["ExitCode"]), ("exited", 0), state)
        self.assertIn("draining", c.logs())


class ComposeFile(unittest.TestCase):
    """native/container/compose.yaml and haproxy.cfg are consistent and valid."""

    def test_three_origins_behind_haproxy_sharing_redis_and_s3(self):
        try:
            import yaml
        except ImportError:
            self.skipTest("python3-yaml is not installed")
        here = os.path.join(ROOT, "native", "container")
        with open(os.path.join(here, "compose.yaml")) as f:
            compose = yaml.safe_load(f)
        services = compose["services"]
        origins = sorted(n for n, s in services.items() if s.get("image") == "nic-origin:latest")
        self.assertEqual(origins, ["origin1", "origin2", "origin3"])
        for n in origins:
            env = services[n]["environment"]
            self.assertEqual(env["STORAGE_BACKEND"], "s3")
            self.assertEqual(env["REDIS_URL"], "redis://redis:6379")
            self.assertTrue(env["S3_ENDPOINT"].startswith("http://s3:"))
            self.assertEqual(services[n]["build"]["dockerfile"], "native/container/Dockerfile")
            self.assertEqual(len(services[n]["volumes"]), 1)
            self.assertTrue(services[n]["volumes"][0].endswith(":/var/cache/nic"))
        self.assertIn("redis", services)
        self.assertIn("s3", services)
        self.assertIn("./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro", services["lb"]["volumes"])
        with open(os.path.join(here, "haproxy.cfg")) as f:
            cfg = f.read()
        self.assertEqual(re.findall(r"server (origin\d) (origin\d):3002", cfg),
                         [(n, n) for n in origins])
        self.assertIn("balance roundrobin", cfg)
        if shutil.which("haproxy"):
            p = subprocess.run(["haproxy", "-c", "-f", os.path.join(here, "haproxy.cfg")], capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    missing = [b for b in ("podman", "runc", "debootstrap") if shutil.which(b) is None]
    if missing:
        print("SKIPPED: missing " + ", ".join(missing))
        sys.exit(77)
    unittest.main()
