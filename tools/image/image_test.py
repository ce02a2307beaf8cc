"""Build the container image from the repository's Dockerfile and check it from its file system.

    python tools/image/image_test.py        (what `make image-test` runs, as root)

1. The engine: podman, or docker when its daemon answers; as root with apt-get, Debian's podman is
   installed when neither is there.
2. The base: the Dockerfile's public base when it is present or can be pulled; otherwise a Debian
   minbase of the same release made by tools/image/base.sh, and then the Python dependencies
   come from a wheelhouse built here (build/wheelhouse/) because no package index is reachable
   from inside the build either.
3. The image is built by tools/image/build.sh (as `make image` does) and its file system is
   exported to a directory. Each check runs a command there the way a container would: under
   chroot as the image's USER, with the image's ENV, WORKDIR and ENTRYPOINT, in a private mount
   namespace whose root is read-only, with a tmpfs at /tmp and a state volume (mounts vanish with
   the namespace; the container made for the export is removed at the end).
   The daemon itself runs against the HTTPS fake of Azure (tests/fakeazure.py) on loopback, and
   the image's HEALTHCHECK command is run exactly as the image records it.

No `podman run`: it needs a runtime that can set up cgroups, which some CI machines refuse.
Exit 0 when every check passes, 1 when one fails, 77 when the checks cannot run here at all
(not root, no engine), with the reason.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TAG = "localhost/cvi-autoscaler:image-test"
CONTAINER = "cvi-autoscaler-image-test"
WORK = Path("/var/tmp/cvi-autoscaler-image-test")
WHEELHOUSE = ROOT / "build" / "wheelhouse"
CONFIG_DIR = "/etc/cvi-autoscaler"
STATE_DIR = "/var/lib/cvi-autoscaler"
SKIP = 77


STARTED = time.monotonic()


def say(text: str) -> None:
    print(f"image-test [{time.monotonic() - STARTED:4.0f} s] {text}", flush=True)


def cannot_run(reason: str) -> None:
    say(f"SKIPPED, cannot run here: {reason}")
    sys.exit(SKIP)


def sh(argv: Sequence[str], *, check: bool = True, timeout: float = 1800, **kw: Any) -> str:
    kw.setdefault("stdin", subprocess.DEVNULL)
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, **kw)
    if check and done.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return str(done.stdout)


# ------------------------------------------------------------------------------------ engine


def find_engine() -> list[str]:
    """The engine command (podman or docker), installing Debian's podman when it can."""
    if "ENGINE" in os.environ:
        return os.environ["ENGINE"].split()
    if shutil.which("podman") is None:
        docker = shutil.which("docker")
        if docker and subprocess.run([docker, "info"], capture_output=True).returncode == 0:
            return [docker]
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            cannot_run("neither podman nor a working docker, and not root with apt-get")
        say("installing Debian's podman (apt-get)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        sh(["apt-get", "update", "-qq"], env=env)
        sh(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "podman"], env=env)
    # Podman's configured storage when it works here, else vfs (works on any file system).
    if subprocess.run(["podman", "info"], capture_output=True).returncode == 0:
        return ["podman"]
    return ["podman", "--storage-driver", "vfs"]


def image_exists(engine: list[str], name: str) -> bool:
    return subprocess.run([*engine, "image", "inspect", name], capture_output=True).returncode == 0


def public_base() -> str:
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.startswith("ARG BASE_IMAGE="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError("the Dockerfile has no ARG BASE_IMAGE=")


def choose_base(engine: list[str]) -> tuple[str, bool]:
    """(base image, whether to install from the wheelhouse)."""
    wanted = os.environ.get("IMAGE_WHEELHOUSE", "")
    if os.environ.get("BASE_IMAGE"):
        return os.environ["BASE_IMAGE"], wanted == "1"
    public = public_base()
    if image_exists(engine, public):
        return public, wanted == "1"
    pulled = subprocess.run([*engine, "pull", "-q", public], capture_output=True, text=True)
    if pulled.returncode == 0:
        say(f"base: pulled {public}")
        return public, wanted == "1"
    reason = (pulled.stderr.strip().splitlines() or ["?"])[-1]
    say(f"base: {public} cannot be pulled ({reason[:200]}); using a local Debian base")
    before = time.monotonic()
    env = {**os.environ, "ENGINE": " ".join(engine)}
    done = subprocess.run(
        [str(ROOT / "tools/image/base.sh")], env=env, stdin=subprocess.DEVNULL, text=True
    )
    if done.returncode != 0:
        raise RuntimeError("tools/image/base.sh failed")
    say(f"base: ready in {time.monotonic() - before:.0f} s")
    release = public.split("@")[0].rsplit("-", 1)[-1]
    return f"localhost/cvi-autoscaler-base:{release}", wanted != "0"


def build_wheelhouse() -> None:
    """The project's dependencies (and its build backend) as wheels in the build context."""
    before = time.monotonic()
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    sh(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(WHEELHOUSE),
            str(ROOT),
            "tzdata>=2024.1",
            "setuptools>=77",
            "wheel",
        ]
    )
    for stale in WHEELHOUSE.glob("cvi_autoscaler-*.whl"):  # the image builds from the source
        stale.unlink()
    count = len(list(WHEELHOUSE.glob("*.whl")))
    say(f"wheelhouse: {count} wheels for Python {sys.version_info.major}.{sys.version_info.minor}")
    say(f"wheelhouse: ready in {time.monotonic() - before:.0f} s")


def build(engine: list[str], base: str, wheelhouse: bool, asked: Asked) -> dict[str, Any]:
    old = inspect(engine, TAG) if image_exists(engine, TAG) else None
    env = {**os.environ, "ENGINE": " ".join(engine), "IMAGE": TAG, "BASE_IMAGE": base}
    env |= {"REVISION": asked.revision, "SOURCE": asked.source}
    env["WHEELHOUSE"] = "1" if wheelhouse else ""
    before = time.monotonic()
    done = subprocess.run(
        [str(ROOT / "tools/image/build.sh")],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        print(done.stdout[-6000:], done.stderr[-6000:], sep="\n")
        if wheelhouse:
            say("a wheel that does not fit the base's Python shows as 'No matching distribution'")
        raise RuntimeError("the image did not build")
    say(f"build: {TAG} in {time.monotonic() - before:.0f} s")
    new = inspect(engine, TAG)
    if old is not None and old["Id"] != new["Id"]:  # the previous run's image, now untagged
        subprocess.run([*engine, "rmi", old["Id"]], capture_output=True)
    # Untagged build-stage images of earlier builds; the newest stays as the build cache.
    label = "label=cvi-autoscaler.stage=build"
    stages = sh(
        [*engine, "images", "-q", "--no-trunc", "--filter", "dangling=true", "--filter", label]
    ).split()
    created = sorted((inspect(engine, i).get("Created", ""), i) for i in set(stages))
    for _, stale in created[:-1]:
        subprocess.run([*engine, "rmi", stale], capture_output=True)
    return new


def inspect(engine: list[str], name: str) -> dict[str, Any]:
    (data,) = json.loads(sh([*engine, "image", "inspect", name]))
    return dict(data)


@contextmanager
def rootfs(engine: list[str], work: Path) -> Iterator[Path]:
    """The file system of a container made from the image: podman mounts it (its writable layer,
    as a running container has), docker exports it to a directory. Removed afterwards."""
    subprocess.run([*engine, "rm", "-f", CONTAINER], capture_output=True)
    sh([*engine, "create", "--name", CONTAINER, TAG])
    try:
        if Path(engine[0]).name == "podman":
            yield Path(sh([*engine, "mount", CONTAINER]).strip())
            return
        dest = work / "rootfs"
        dest.mkdir()
        with subprocess.Popen([*engine, "export", CONTAINER], stdout=subprocess.PIPE) as exp:
            sh(["tar", "-x", "--numeric-owner", "-p", "-C", str(dest)], stdin=exp.stdout)
        if exp.returncode != 0:
            raise RuntimeError(f"{engine[0]} export exited {exp.returncode}")
        yield dest
    finally:
        if Path(engine[0]).name == "podman":
            subprocess.run([*engine, "umount", CONTAINER], capture_output=True)
        subprocess.run([*engine, "rm", "-f", CONTAINER], capture_output=True)


# ------------------------------------------------------------------------ the image's "runtime"


@dataclass(frozen=True)
class Image:
    rootfs: Path
    config_dir: Path  # mounted read-only at /etc/cvi-autoscaler
    state_dir: Path  # the state volume at /var/lib/cvi-autoscaler
    user: str
    env: tuple[str, ...]
    workdir: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]

    def argv(
        self,
        command: Sequence[str],
        *,
        env: Sequence[str] = (),
        user: str | None = None,
        read_only: bool = True,
    ) -> list[str]:
        """``command`` run inside the image's file system as a container would run it."""
        uid, _, gid = (user or self.user).partition(":")
        r = shlex.quote(str(self.rootfs))
        setup = [
            "set -e",
            f"mount --bind {r} {r}",
            f"mount -o remount,bind,ro {r}" if read_only else ":",
            f"mount -t proc proc {r}/proc",
            f"mount -t tmpfs -o mode=755,size=1m tmpfs {r}/dev",
            *(
                f"touch {r}/dev/{n} && mount --bind /dev/{n} {r}/dev/{n}"
                for n in ("null", "zero", "full", "random", "urandom")
            ),
            f"ln -s /proc/self/fd {r}/dev/fd",
            f"mount -t tmpfs -o mode=1777,size=64m tmpfs {r}/tmp",
            f"mount --bind {shlex.quote(str(self.state_dir))} {r}{STATE_DIR}",
            f"mount --bind {shlex.quote(str(self.config_dir))} {r}{CONFIG_DIR}",
            f"mount -o remount,bind,ro {r}{CONFIG_DIR}",
            'exec "$@"',
        ]
        inner = [
            "chroot",
            f"--userspec={uid}:{gid or uid}",
            f"--groups={gid or uid}",
            str(self.rootfs),
            "/usr/bin/env",
            "-i",
            "-C",
            self.workdir or "/",
            *self.env,
            *env,
            *command,
        ]
        script = "\n".join(setup)
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *inner]


@dataclass
class Report:
    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append((name, ok, detail))
        say(f"{'PASS' if ok else 'FAIL'}  {name}{f'  ({detail})' if detail else ''}")
        return ok


def run_in(image: Image, command: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        image.argv(command, **kw),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def tail(done: subprocess.CompletedProcess[str], n: int = 400) -> str:
    return (done.stdout + done.stderr).strip().replace("\n", " | ")[-n:]


# -------------------------------------------------------------------------------- the checks


def healthcheck_test(data: dict[str, Any]) -> list[str]:
    """The HEALTHCHECK command as the image records it (podman: top level; docker: Config)."""
    found = data.get("Healthcheck") or (data.get("Config") or {}).get("Healthcheck") or {}
    return [str(arg) for arg in found.get("Test") or []]


def check_config(report: Report, data: dict[str, Any], asked: Asked) -> None:
    config = data.get("Config") or {}
    labels = dict(config.get("Labels") or data.get("Labels") or {})
    user = str(config.get("User") or "")
    uid = user.split(":")[0]
    report.check("USER is set and not root", uid not in ("", "0", "root"), f"USER {user!r}")
    report.check(
        "ENTRYPOINT is cvi-autoscaler",
        config.get("Entrypoint") == ["cvi-autoscaler"],
        str(config.get("Entrypoint")),
    )
    test = healthcheck_test(data)
    report.check("HEALTHCHECK is recorded in the image", test[:1] == ["CMD"], str(test)[:120])
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]
    created = labels.get("org.opencontainers.image.created", "")
    try:
        stamp = datetime.fromisoformat(created.replace("Z", "+00:00"))
        # The label has whole seconds; the build began after `asked.at` and ended before now.
        fresh = asked.at - timedelta(seconds=1) <= stamp <= datetime.now(UTC)
    except ValueError:
        fresh = False
    wanted = {
        "version": version,
        "revision": asked.revision,
        "source": asked.source,
    }
    wrong = [
        f"{key}={labels.get(f'org.opencontainers.image.{key}', '<missing>')!r}, asked {value!r}"
        for key, value in wanted.items()
        if labels.get(f"org.opencontainers.image.{key}") != value
    ]
    if not fresh:
        wrong.append(f"created={created!r}, not within the build (began {asked.at:%H:%M:%SZ})")
    shown = {**wanted, "created": created}
    report.check(
        "OCI labels: version, revision, created, source",
        not wrong and len(asked.revision) == 40,
        "; ".join(wrong) or ", ".join(f"{k}={v!r}" for k, v in shown.items()),
    )


@dataclass(frozen=True)
class Asked:
    """The labels the build is asked for (tools/image/build.sh takes them from the environment)."""

    revision: str
    source: str
    at: datetime

    @classmethod
    def now(cls) -> Asked:
        git = ["git", "-C", str(ROOT)]
        revision = sh([*git, "rev-parse", "HEAD"], check=False).strip()
        source = (
            os.environ.get("SOURCE")
            or sh([*git, "config", "--get", "remote.origin.url"], check=False).strip()
        )
        return cls(revision or "unknown", source, datetime.now(UTC))


def check_ownership(report: Report, image: Image) -> None:
    """The code belongs to root and nobody else may write it; the user can still run it."""
    uid = int(image.user.split(":")[0])
    writable: list[str] = []
    owned: list[str] = []
    code = image.rootfs / "opt/cvi-autoscaler"
    for path in [code, *code.rglob("*")]:
        st = path.lstat()
        if path.is_symlink():
            continue
        if st.st_uid == uid:
            owned.append(str(path))
        if st.st_mode & 0o022:
            writable.append(str(path))
    report.check(
        "code under /opt/cvi-autoscaler owned by root, not group/other writable",
        not writable and not owned,
        f"{len(owned)} owned by {uid}, {len(writable)} writable by others"
        + (f": {(owned + writable)[:3]}" if owned or writable else ""),
    )
    probe = (
        "import pathlib, scaler, sys\n"
        "pkg = pathlib.Path(scaler.__file__).parent\n"
        "for attempt in (lambda: open(pkg / '__init__.py', 'a'),\n"
        "                lambda: (pkg / 'planted.py').write_text('x'),\n"
        "                lambda: open(sys.executable, 'ab')):\n"
        "    try:\n"
        "        attempt()\n"
        "    except PermissionError:\n"
        "        continue\n"
        "    sys.exit('the user could modify the code')\n"
        "print('denied')\n"
    )
    # On a writable root, so that only the files' owner and mode refuse the writes.
    done = run_in(image, ["python", "-c", probe], read_only=False)
    report.check(
        "the image's user cannot modify the code (writable root)",
        done.returncode == 0 and "denied" in done.stdout,
        tail(done),
    )
    ident = run_in(image, ["python", "-c", "import os; print(os.getuid(), os.geteuid())"])
    ids = ident.stdout.split()
    report.check(
        "the process runs as a non-root user",
        ident.returncode == 0 and len(ids) == 2 and "0" not in ids,
        f"uid/euid {' '.join(ids)}",
    )
    state = image.rootfs / STATE_DIR.lstrip("/")
    st = state.stat()
    report.check(
        f"{STATE_DIR} belongs to the user, mode 0700",
        st.st_uid == uid and (st.st_mode & 0o777) == 0o700,
        f"uid {st.st_uid} mode {oct(st.st_mode & 0o777)}",
    )


def check_commands(report: Report, image: Image, version: str) -> None:
    entry = list(image.entrypoint)
    done = run_in(image, [*entry, "--version"])
    report.check(
        "entry point: cvi-autoscaler --version",
        done.returncode == 0 and version in done.stdout,
        done.stdout.strip(),
    )
    find = run_in(
        image,
        ["python", "-c", "import scaler, pathlib; print(pathlib.Path(scaler.__file__).parent)"],
    )
    bundled = f"{find.stdout.strip()}/data/demo.toml"
    # The demo's [pexip] is a placeholder the simulator plays, with no password to read:
    # the file alone is checked, as an operator would check it on a machine without secrets.
    done = run_in(image, [*entry, "validate", "--offline", "--config", bundled])
    report.check(
        "validate --offline the bundled demo config: exit 0", done.returncode == 0, tail(done)
    )
    done = run_in(image, [*entry, "validate", "--config", f"{CONFIG_DIR}/example-azure.toml"])
    report.check(
        "validate examples/azure.toml mounted as an operator would: exit 0",
        done.returncode == 0,
        tail(done),
    )
    done = run_in(image, [*entry, "validate", "--config", f"{CONFIG_DIR}/broken.toml"])
    report.check(
        "validate a broken config: exit 2, naming the key",
        done.returncode == 2 and "pools[0].max" in done.stdout + done.stderr,
        f"exit {done.returncode}: {tail(done, 200)}",
    )
    done = run_in(
        image, [*entry, "demo", "--start-hour", "8", "--end-hour", "10", "--speed", "36000"]
    )
    report.check(
        "a short demo (08:00-10:00 simulated): exit 0",
        done.returncode == 0 and "day done" in done.stdout,
        done.stdout.strip().splitlines()[-1][:160] if done.stdout.strip() else tail(done),
    )
    zone = (
        "import importlib.metadata as m, zoneinfo; zoneinfo.ZoneInfo('Europe/London');"
        " print(m.version('tzdata'))"
    )
    done = run_in(image, ["python", "-c", zone])
    report.check(
        "tzdata from PyPI installed, zoneinfo works", done.returncode == 0, tail(done, 120)
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthcheck(image: Image, test: list[str], env: Sequence[str]) -> int:
    if test[0] == "CMD":
        command = test[1:]
    elif test[0] == "CMD-SHELL":
        command = ["/bin/sh", "-c", test[1]]
    else:
        raise RuntimeError(f"unexpected HEALTHCHECK test {test}")
    return run_in(image, command, env=env).returncode


def check_daemon(report: Report, image: Image, test: list[str]) -> None:
    """The image's own ENTRYPOINT + CMD against the fake Azure; the HEALTHCHECK before/after."""
    from tests.fakeazure import FakeAzure

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, FakeAzure(Path(tmp)) as fake:
        vmss = fake.add_vmss("cvi", "tc", capacity=3)
        fake.set_usage("westeurope", "cores", current=12, limit=400)
        fake.set_usage("westeurope", "standardFSv2Family", current=12, limit=400)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        points = [(now + timedelta(minutes=m), 30.0) for m in range(-30, 60)]
        fake.set_metric(vmss, "Pexip/CVI", "ActiveCalls", points)
        shutil.copy(fake.ca_file, image.config_dir / "fakeazure-ca.pem")
        (image.config_dir / "cvi-autoscaler.toml").write_text(
            f"""
[daemon]
interval_seconds = 2

[azure]
subscription_id = "{fake.subscription_id}"
location = "westeurope"
resource_manager_url = "{fake.url}"
metrics_url = "{fake.url}"
credential = "static-token"
ca_bundle = "{CONFIG_DIR}/fakeazure-ca.pem"
polling_interval_seconds = 0

[[pools]]
name = "tc"
resource_id = "{vmss}"
vcpus_per_instance = 4
min = 1
max = 10
[pools.metric]
namespace = "Pexip/CVI"
name = "ActiveCalls"
published_elsewhere = true
lag_minutes = 1
[[pools.policies]]
type = "target-tracking"
""",
            encoding="utf-8",
        )
        env = [f"CVI_AUTOSCALER__HTTP__PORT={port}"]
        log = image.state_dir.parent / "daemon.log"
        with log.open("wb") as out:
            daemon = subprocess.Popen(
                image.argv(
                    [*image.entrypoint, *image.cmd], env=[*env, "CVI_AUTOSCALER_STATIC_TOKEN=x"]
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            healthy, waited = False, 0.0
            deadline = time.monotonic() + 90  # the HEALTHCHECK's start period
            start = time.monotonic()
            while time.monotonic() < deadline and daemon.poll() is None:
                if healthcheck(image, test, env) == 0:
                    healthy, waited = True, time.monotonic() - start
                    break
                time.sleep(1)
            report.check(
                "HEALTHCHECK succeeds against the daemon (ENTRYPOINT + CMD, read-only root)",
                healthy,
                f"after {waited:.1f} s" if healthy else log.read_text(errors="replace")[-600:],
            )
            if healthy:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as r:
                    pools = [p.get("pool") for p in json.load(r).get("pools") or []]
                seen = sorted({f"{r.method} {r.path.rsplit('/', 1)[-1]}" for r in fake.requests})
                report.check(
                    "the daemon reads the fake Azure and reports its pool on /status",
                    bool(seen) and pools == ["tc"],
                    f"pools {pools}; requests: {', '.join(seen)[:160]}",
                )
        finally:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
            try:
                code = daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
                code = daemon.wait()
        report.check("the daemon stops on SIGTERM with exit 0", code == 0, f"exit {code}")
        after = healthcheck(image, test, env)
        report.check("HEALTHCHECK fails once the daemon is stopped", after != 0, f"exit {after}")


# ------------------------------------------------------------------------------------- main


@contextmanager
def workdir() -> Iterator[Path]:
    if WORK.exists():  # a previous run that was killed; its mounts died with their namespaces
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    try:
        yield WORK
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


def main() -> int:
    if os.geteuid() != 0:
        cannot_run("the image's file system is run with chroot and mount namespaces: run as root")
    for tool in ("unshare", "chroot", "tar", "mount"):
        if shutil.which(tool) is None:
            cannot_run(f"{tool} is not installed")
    engine = find_engine()
    say(f"engine: {' '.join(engine)}")
    base, wheelhouse = choose_base(engine)
    say(f"base: {base}")
    if wheelhouse:
        build_wheelhouse()
    asked = Asked.now()
    data = build(engine, base, wheelhouse, asked)
    config = data.get("Config") or {}
    labels = dict(config.get("Labels") or {})
    size = int(data.get("Size") or 0)
    report = Report()
    check_config(report, data, asked)
    with workdir() as work, rootfs(engine, work) as root:
        user = str(config.get("User") or "0")
        uid, _, gid = user.partition(":")
        cfg, state = work / "config", work / "state"
        cfg.mkdir()
        state.mkdir(mode=0o700)
        os.chown(state, int(uid), int(gid or uid))
        shutil.copy(ROOT / "examples" / "azure.toml", cfg / "example-azure.toml")
        broken = (ROOT / "examples" / "azure.toml").read_text(encoding="utf-8")
        (cfg / "broken.toml").write_text(
            broken.replace("max = ", "max = -", 1)
            if "max = " in broken
            else "[[pools]]\nmax = -1\n",
            encoding="utf-8",
        )
        cfg.chmod(0o755)
        image = Image(
            rootfs=root,
            config_dir=cfg,
            state_dir=state,
            user=user,
            env=tuple(config.get("Env") or ()),
            workdir=str(config.get("WorkingDir") or "/"),
            entrypoint=tuple(config.get("Entrypoint") or ()),
            cmd=tuple(config.get("Cmd") or ()),
        )
        version = labels.get("org.opencontainers.image.version", "")
        test = healthcheck_test(data)
        for group in (
            lambda: check_commands(report, image, version),
            lambda: check_ownership(report, image),
            lambda: check_daemon(report, image, test) if test else None,
        ):
            try:
                group()
            except Exception as exc:  # one broken group fails, the others still run
                report.check(f"checks ran to the end ({type(exc).__name__})", False, str(exc))
    failed = [name for name, ok, _ in report.results if not ok]
    say(f"image size: {size / 1e6:.1f} MB ({size} bytes)")
    say(f"time taken: {time.monotonic() - STARTED:.0f} s")
    say(f"{len(report.results) - len(failed)} of {len(report.results)} checks passed")
    for name in failed:
        say(f"FAILED: {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
