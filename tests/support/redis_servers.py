"""Throwaway Redis servers for the tests: one server, or a 3-master cluster, on free ports.

Real `redis-server` processes (installed on the CI machines; elsewhere see the README), each
in its own temporary folder, stopped when the test session ends. `REDIS_URL` /
`REDIS_CLUSTER_URL` point the tests at existing servers instead.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_cluster_port() -> int:
    """A port whose cluster bus port (port + 10000) is free too, as cluster mode needs."""
    for _ in range(200):
        port = random.randint(20000, 45000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def redis_server_path() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("redis-server is not installed: apt-get install redis-server (see README)")
    return found


def _cli(port: int, *args: str, timeout: float = 10) -> str:
    done = subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    return done.stdout


@dataclass
class RedisServer:
    """One redis-server process; `stop`/`start` keep its port and folder (for restart tests)."""

    extra: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tierline-redis-")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [
            redis_server_path(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.folder),
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            str(self.folder / "redis.log"),
            *self.extra,
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if "PONG" in _cli(self.port, "ping", timeout=2):
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(self.folder / 'redis.log').read_text()[-2000:]}")
            time.sleep(0.02)
        self.stop(kill=True)
        raise RuntimeError(f"redis-server on port {self.port} did not answer")

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=10)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class RedisCluster:
    """Three masters, no replicas, joined with `redis-cli --cluster create`."""

    nodes: list[RedisServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> RedisCluster:
        try:
            return self._start()
        except BaseException:
            self.cleanup()  # no orphan redis-server when the cluster cannot be formed
            raise

    def _start(self) -> RedisCluster:
        for _ in range(3):
            node = RedisServer(
                extra=("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"), port=free_cluster_port()
            )
            self.nodes.append(node.start())
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        _cli(
            self.nodes[0].port,
            "--cluster",
            "create",
            *addresses,
            "--cluster-replicas",
            "0",
            "--cluster-yes",
            timeout=30,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if all("cluster_state:ok" in _cli(n.port, "cluster", "info") for n in self.nodes):
                return self
            time.sleep(0.05)
        raise RuntimeError("the test cluster did not reach cluster_state:ok")

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()


def cli(port: int, *args: str, timeout: float = 10) -> str:
    """`redis-cli -p port args…` on 127.0.0.1; its standard output."""
    return _cli(port, *args, timeout=timeout)


@dataclass
class SentinelGroup:
    """A primary, its replicas and three Sentinels watching them as `service`, all on free ports.

    Sentinels notice a failed primary after a second (`down-after-milliseconds`); a forced
    `SENTINEL FAILOVER` needs no vote, so a test can fail over a healthy primary on demand.
    `extra` goes to every Redis server (a failover makes any of them the primary).
    """

    service: str = "tierline"
    replica_count: int = 1
    extra: tuple[str, ...] = ()
    primary: RedisServer | None = None
    replicas: list[RedisServer] = field(default_factory=list)
    sentinels: list[RedisServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def start(self) -> SentinelGroup:
        try:
            return self._start()
        except BaseException:
            self.cleanup()
            raise

    def _start(self) -> SentinelGroup:
        self.primary = RedisServer(extra=self.extra).start()
        for _ in range(self.replica_count):
            follow = ("--replicaof", "127.0.0.1", str(self.primary.port))
            self.replicas.append(RedisServer(extra=(*self.extra, *follow)).start())
        for _ in range(3):
            sentinel = RedisServer(extra=("--sentinel",))
            config = sentinel.folder / "sentinel.conf"
            config.write_text(
                f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.service} 1000\n"
                f"sentinel failover-timeout {self.service} 5000\n"
            )
            # Sentinel rewrites its config file, so each gets its own, in its own folder.
            self.sentinels.append(_start_sentinel(sentinel, config))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if all(self._ready(s.port) for s in self.sentinels):
                return self
            time.sleep(0.05)
        raise RuntimeError("the test Sentinels did not see each other and the replicas in time")

    def _ready(self, port: int) -> bool:
        state = cli(port, "sentinel", "master", self.service).split()
        fields = dict(zip(state[::2], state[1::2], strict=False))
        replicas = cli(port, "sentinel", "replicas", self.service)
        return (
            fields.get("num-other-sentinels") == "2"
            and fields.get("num-slaves") == str(self.replica_count)
            and replicas.count("master-link-status\nok") == self.replica_count
        )

    def primary_port(self) -> int:
        """The primary's port as the first Sentinel names it now."""
        return int(cli(self.sentinels[0].port, "sentinel", "get-master-addr-by-name", self.service).split()[1])

    def cleanup(self) -> None:
        for server in [*self.sentinels, *self.replicas, self.primary]:
            if server is not None:
                server.cleanup()


def _start_sentinel(sentinel: RedisServer, config: Path) -> RedisServer:
    args = [redis_server_path(), str(config), "--sentinel", "--port", str(sentinel.port), "--bind", "127.0.0.1"]
    args += ["--dir", str(sentinel.folder), "--logfile", str(sentinel.folder / "redis.log")]
    sentinel.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if "PONG" in _cli(sentinel.port, "ping", timeout=2):
            return sentinel
        if sentinel.process.poll() is not None:
            raise RuntimeError(f"redis-sentinel exited: {(sentinel.folder / 'redis.log').read_text()[-2000:]}")
        time.sleep(0.02)
    raise RuntimeError(f"redis-sentinel on port {sentinel.port} did not answer")


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate it signed for 127.0.0.1: (ca.crt, redis.crt, redis.key)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl is not installed: apt-get install openssl")
    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca, ca_key = folder / "ca.crt", folder / "ca.key"
    cert, cert_key, request = folder / "redis.crt", folder / "redis.key", folder / "redis.csr"
    names = folder / "san.ext"
    names.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for args in (
        ["req", "-x509", *key, "-keyout", str(ca_key), "-out", str(ca), "-days", "1", "-subj", "/CN=tierline-test-ca"],
        ["req", *key, "-keyout", str(cert_key), "-out", str(request), "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out"],
    ):
        if args[0] == "x509":
            args += [str(cert), "-days", "1", "-extfile", str(names)]
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=30)
    return ca, cert, cert_key


@dataclass
class TlsRedis:
    """A Redis that also listens with TLS (a certificate from a throwaway CA), with an ACL user.

    The plain port stays open for the harness's own checks; the tests connect on `tls_port`.
    """

    user: str = "router"
    password: str = "s3cret-pass"
    tls_port: int = field(default_factory=free_port)
    server: RedisServer | None = None
    ca: Path | None = None

    def start(self) -> TlsRedis:
        folder = Path(tempfile.mkdtemp(prefix="tierline-redis-tls-"))
        self.ca, cert, key = make_certificates(folder)
        tls = ("--tls-port", str(self.tls_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key))
        self.server = RedisServer(extra=(*tls, "--tls-ca-cert-file", str(self.ca), "--tls-auth-clients", "no"))
        self.server.folder = folder
        self.server.start()
        cli(self.server.port, "acl", "setuser", self.user, "on", f">{self.password}", "~*", "&*", "+@all")
        return self

    def cleanup(self) -> None:
        if self.server is not None:
            self.server.cleanup()
