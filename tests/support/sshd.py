"""OpenSSH's ``sshd`` on loopback for the SFTP tests: a throwaway configuration, generated keys, a free port.

:class:`Sshd` writes a host key (ed25519) and a user key (ed25519, no passphrase) into a temporary folder,
an ``sshd_config`` with ``Subsystem sftp internal-sftp`` (plus any extra lines, e.g. a ``Match User ...
ChrootDirectory`` block), and runs ``sshd -D -e`` as the current user on a free port of 127.0.0.1. It is
the real server the gateway talks to in production, not a fake: key exchange, authentication, SFTP and
its errors come from OpenSSH. :meth:`Sshd.drop_connections` kills the per-connection processes (a
connection dropped mid-transfer); :meth:`Sshd.stop` kills the listener (a server that is down).

:func:`stalled_server` is the other kind of peer: a TCP listener that accepts and never says a word.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = ["Sshd", "sshd_missing", "stalled_server"]


def sshd_missing() -> str | None:
    """Why no sshd can be run here (None: it can)."""
    for tool in ("sshd", "ssh-keygen"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"OpenSSH's {tool} is not installed (apt-get install openssh-server)"
    return None


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path, kind: str = "ed25519", passphrase: str = "") -> Path:
    """A new key pair at ``path`` (private) and ``path.pub``."""
    bits = ["-b", "1024"] if kind == "rsa" else []  # fast to make; OpenSSH still accepts 1024-bit RSA
    subprocess.run(
        [_tool("ssh-keygen"), "-q", "-t", kind, *bits, "-N", passphrase, "-f", str(path), "-C", "test"],
        check=True,
        capture_output=True,
    )
    return path


class Sshd:
    """A running ``sshd`` for one test session (or one test, with its own ``extra`` config lines)."""

    def __init__(self, root: Path, extra: str = "", *, port: int | None = None) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.host_key = keygen(root / "host_ed25519")
        self.user_key = keygen(root / "user_ed25519")
        self.authorized = root / "authorized_keys"
        self.authorized.write_text((root / "user_ed25519.pub").read_text())
        self.port = port or free_port()
        self.read_only_port: int | None = None  # a second port, when the config makes one (see sftpkit)
        self.user = os.environ.get("USER") or _whoami()
        self.log = root / "sshd.log"
        self.config = root / "sshd_config"
        self.config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key}",
                    f"PidFile {root / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.authorized}",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    "UsePAM no",
                    "MaxStartups 100",
                    "MaxSessions 100",
                    "LogLevel ERROR",
                    "Subsystem sftp internal-sftp",
                    extra,
                    "",
                ]
            )
        )
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation's empty folder
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def host_public(self) -> str:
        """The host key as a known_hosts line's key part (``ssh-ed25519 AAAA...``)."""
        kind, blob = (self.root / "host_ed25519.pub").read_text().split()[:2]
        return f"{kind} {blob}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [_tool("sshd"), "-D", "-e", "-f", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"sshd did not listen on 127.0.0.1:{self.port}: {self.log.read_text()[-2000:]}")

    def children(self) -> list[int]:
        """The per-connection processes of this sshd (and theirs)."""
        if self.proc is None:
            return []
        parents = {self.proc.pid}
        found: list[int] = []
        changed = True
        while changed:
            changed = False
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit() or int(entry.name) in found:
                    continue
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid in parents:
                    found.append(int(entry.name))
                    parents.add(int(entry.name))
                    changed = True
        return found

    def drop_connections(self) -> int:
        """Kill every connection's process (the listener stays): a connection dropped mid-transfer."""
        pids = self.children()
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def stop(self) -> None:
        self.drop_connections()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def _whoami() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


@contextmanager
def stalled_server() -> Iterator[int]:
    """A TCP listener on loopback that accepts connections and never sends a byte; yields its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()
