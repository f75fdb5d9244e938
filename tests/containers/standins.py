"""Stand-ins for the official base images that compose/compose.yaml and compose/Dockerfile name, built from Debian's
own packages: no image registry is reachable from these machines, Debian's mirror is.

Each is a root file system made by mmdebstrap and imported with `docker import`, under a name of its own that the
container tests pass through the variables the Compose file reads (PYTHON_IMAGE, MYSQL_IMAGE, REDIS_IMAGE,
HAPROXY_IMAGE, PROMETHEUS_IMAGE, NODE_EXPORTER_IMAGE); nothing else differs from a user's run. The behaviours of the
official images they reproduce, and no more:

- python: Python 3.13 (Debian trixie's) as /usr/local/bin/python3.13, its headers, pip allowed to install into
  the system (as in the official image), useradd and groupadd.
- mysql: Oracle's MySQL 9.7 (Debian sid's); on an empty /var/lib/mysql the entrypoint creates MYSQL_DATABASE,
  MYSQL_USER with MYSQL_PASSWORD and root with MYSQL_ROOT_PASSWORD; arguments that start with "-" are mysqld's;
  mysqladmin and mysqldump are there.
- redis: Redis (bookworm's) as the redis user in /data, protected mode off; redis-cli is there.
- haproxy: HAProxy 2.6 (bookworm's) with bash, run as the haproxy user.
- prometheus: Prometheus (bookworm's) as the entrypoint, run as nobody in /prometheus; wget and promtool are there.
- node_exporter: the node exporter (bookworm's prometheus-node-exporter) as the entrypoint, run as nobody.
- registry: the CNCF distribution's registry (bookworm's docker-registry) on port 5000, without authentication, for
  the Swarm tests' own network.

Every one carries this machine's CA bundle, so that a build inside reaches PyPI and Debian as this machine does.
Root file systems are kept in ~/.cache by the hash of what makes them, and an image is imported again only when
that hash changes: a second run builds nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .engine import CACHE, Engine

HERE = Path(__file__).parent / "standins"
MIRROR = "http://deb.debian.org/debian"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
LABEL = "org.computation-dashboard.standin"


@dataclass(frozen=True)
class Standin:
    image: str
    suite: str
    packages: tuple[str, ...]
    # Shell run on the root file system ($1) before it is packed.
    hooks: tuple[str, ...] = ()
    # Dockerfile instructions for `docker import --change`.
    changes: tuple[str, ...] = ()
    files: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str:
        parts = [json.dumps([self.suite, self.packages, self.hooks, self.changes])]
        parts += [(HERE / name).read_text() for name in self.files]
        parts.append(CA_BUNDLE.read_text() if CA_BUNDLE.exists() else "")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    @property
    def tarball(self) -> Path:
        return CACHE / "standins" / f"{self.image.replace('/', '_').replace(':', '_')}-{self.key}.tar"

    def build(self) -> Path:
        """The root file system as a tarball, made unless the cache has it."""
        if self.tarball.exists():
            return self.tarball
        self.tarball.parent.mkdir(parents=True, exist_ok=True)
        for stale in self.tarball.parent.glob(self.tarball.name.rsplit("-", 1)[0] + "-*.tar"):
            stale.unlink()
        hooks = [
            'mkdir -p "$1/etc/ssl/certs"',
            f'cp {CA_BUNDLE} "$1/etc/ssl/certs/ca-certificates.crt"',
            *(f'install -m 0755 {HERE / name} "$1/usr/local/bin/{name}"' for name in self.files),
            *self.hooks,
            # What apt downloaded is not part of an image.
            'rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*_Packages',
        ]
        partial = self.tarball.with_suffix(".partial")
        command = [
            "mmdebstrap",
            "--quiet",
            "--variant=minbase",
            '--aptopt=Acquire::Check-Valid-Until "false"',
            f"--include={','.join(self.packages)}",
            *(f"--customize-hook={hook}" for hook in hooks),
            "--format=tar",
            self.suite,
            str(partial),
            MIRROR,
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise RuntimeError(f"mmdebstrap failed for {self.image}:\n{result.stderr[-3000:]}")
        partial.rename(self.tarball)
        return self.tarball

    def root(self) -> Path:
        """The root file system unpacked in a directory (for chroot), unless the cache has it."""
        directory = CACHE / "roots" / self.tarball.stem
        if not (directory / "usr").exists():
            for stale in directory.parent.glob(self.tarball.stem.rsplit("-", 1)[0] + "-*"):
                shutil.rmtree(stale)
            partial = directory.with_suffix(".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            subprocess.run(["tar", "-xf", self.build(), "-C", partial], check=True, capture_output=True)
            partial.rename(directory)
        return directory

    def imported(self, engine: Engine) -> bool:
        found = engine.docker(
            "image", "inspect", "--format", f'{{{{index .Config.Labels "{LABEL}"}}}}', self.image, check=False
        )
        return found.returncode == 0 and found.stdout.strip() == self.key

    def load(self, engine: Engine) -> None:
        """Imports the image into `engine`, unless it holds this very one already."""
        if self.imported(engine):
            return
        changes = [*self.changes, f"LABEL {LABEL}={self.key}"]
        engine.docker("import", *(f"--change={change}" for change in changes), self.build(), self.image)


STANDINS = {
    "python": Standin(
        image="standin/python:3.13",
        suite="trixie",
        packages=("python3", "python3-dev", "python3-pip", "passwd"),
        hooks=(
            'for name in python3.13 python3 python; do ln -sf /usr/bin/python3.13 "$1/usr/local/bin/$name"; done',
            'rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
        ),
        # uv trusts its own roots unless told otherwise: here it must trust this machine's.
        changes=("ENV LANG=C.UTF-8", f"ENV SSL_CERT_FILE={CA_BUNDLE}", "ENV UV_NATIVE_TLS=true", 'CMD ["python3"]'),
    ),
    "mysql": Standin(
        image="standin/mysql:9.7",
        suite="sid",
        packages=("mysql-server-core", "mysql-client"),
        hooks=('chroot "$1" sh -c "getent passwd mysql || useradd --system --home-dir /var/lib/mysql mysql"',),
        changes=(
            'ENTRYPOINT ["/usr/local/bin/mysql-entrypoint"]',
            'CMD ["mysqld"]',
            "EXPOSE 3306",
            'VOLUME ["/var/lib/mysql"]',
        ),
        files=("mysql-entrypoint",),
    ),
    "redis": Standin(
        image="standin/redis:7",
        suite="bookworm",
        packages=("redis-server", "redis-tools"),
        hooks=('mkdir -p "$1/data"', 'chroot "$1" chown redis:redis /data'),
        changes=(
            'ENTRYPOINT ["/usr/local/bin/redis-entrypoint"]',
            'CMD ["redis-server"]',
            "WORKDIR /data",
            "EXPOSE 6379",
            'VOLUME ["/data"]',
        ),
        files=("redis-entrypoint",),
    ),
    "haproxy": Standin(
        image="standin/haproxy:2.6",
        suite="bookworm",
        packages=("haproxy", "bash"),
        changes=(
            "USER haproxy",
            "WORKDIR /var/lib/haproxy",
            'CMD ["haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]',
        ),
    ),
    # For the Swarm tests: the image registry that every node pulls from.
    "registry": Standin(
        image="standin/registry:2",
        suite="bookworm",
        packages=("docker-registry",),
        hooks=(
            'mkdir -p "$1/var/lib/docker-registry"',
            # Debian's configuration asks for htpasswd: this one serves anyone on the test's own network.
            "printf 'version: 0.1\\nstorage:\\n  filesystem:\\n    rootdirectory: /var/lib/docker-registry\\n"
            'http:\\n  addr: :5000\\n\' > "$1/etc/docker/registry/config.yml"',
        ),
        changes=(
            'ENTRYPOINT ["/usr/bin/docker-registry"]',
            'CMD ["serve", "/etc/docker/registry/config.yml"]',
            "EXPOSE 5000",
        ),
    ),
    "prometheus": Standin(
        image="standin/prometheus:2",
        suite="bookworm",
        packages=("prometheus", "wget"),
        hooks=('mkdir -p "$1/prometheus" "$1/etc/prometheus"', 'chown 65534:65534 "$1/prometheus"'),
        changes=(
            'ENTRYPOINT ["/usr/bin/prometheus"]',
            'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]',
            "USER nobody",
            "WORKDIR /prometheus",
            "EXPOSE 9090",
            'VOLUME ["/prometheus"]',
        ),
    ),
    "node_exporter": Standin(
        image="standin/node-exporter:1",
        suite="bookworm",
        packages=("prometheus-node-exporter",),
        changes=('ENTRYPOINT ["/usr/bin/prometheus-node-exporter"]', "USER nobody", "EXPOSE 9100"),
    ),
}


def variables() -> dict[str, str]:
    """What the container tests set in .env so that Compose and the Dockerfile use the stand-ins."""
    return {f"{name.upper()}_IMAGE": standin.image for name, standin in STANDINS.items()}


def load_all(engine: Engine) -> None:
    """Builds what the cache lacks (in parallel: it is mostly waiting on the mirror), then imports."""
    with ThreadPoolExecutor(len(STANDINS)) as pool:
        list(pool.map(Standin.build, STANDINS.values()))
    for standin in STANDINS.values():
        standin.load(engine)
    engine.docker("image", "prune", "--force")  # stand-ins that a new one replaced
