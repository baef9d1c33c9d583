"""SFTP pull throughput on loopback: the gateway (paramiko) against OpenSSH's own ``sftp`` client, same run.

``python bench/bench_sftp.py [--size-mb 200] [--small 1000] [--repeat 3] [--requests N] [--read-size BYTES]``

starts OpenSSH's ``sshd`` on a loopback port (throwaway keys, ``internal-sftp``; the tests' server,
``tests/support/sshd.py``), writes one large file of random bytes and ``--small`` files of ~2 KB (an
856 each), then, ``--repeat`` times, interleaved so that a busy machine weighs on both alike, each in
its own process under ``/usr/bin/time -v``:

- ``openssh large``: ``sftp -b`` getting the large file (OpenSSH's defaults: 64 requests of 32 KiB);
- ``gateway download``: the gateway's SFTP session (:mod:`gateway.channels.sftp`) connecting with the
  pinned host key and downloading it with prefetch to a partial file, hashing it as it goes;
- ``gateway pull large``: the whole pull of that file (:class:`gateway.runtime.sftp_pull.Puller`):
  download, archive (durable), ledger row (SQLite), remote move to ``done/``;
- ``openssh small``: ``sftp -b`` getting the ``--small`` files (``get dir/*``);
- ``gateway pull small``: the whole pull of those files, each downloaded, archived, recorded, moved.

Prints wall and CPU seconds, MB/s or files/s, peak RSS, and the gateway/OpenSSH ratio of the medians.
The remote files are put back between runs. Only OpenSSH's client is measured on its side: the
server (the same ``sshd``) works for both.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.sshd import Sshd  # noqa: E402

TIME = "/usr/bin/time"


def timed(cmd: list[str], stdin: str | None = None) -> tuple[float, float, int, float]:
    """Run ``cmd`` under /usr/bin/time -v: wall seconds, CPU seconds (user + system), peak RSS in MB, and the
    seconds the transfer itself took as the gateway's child reports them (OpenSSH: the wall seconds)."""
    start = time.perf_counter()
    proc = subprocess.run([TIME, "-v", *cmd], input=stdin, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", proc.stderr))
    inner = re.search(r"transfer seconds: ([\d.]+)", proc.stdout)
    return seconds, cpu, int(rss[1]) // 1024 if rss else -1, float(inner[1]) if inner else seconds


def openssh(server: Sshd, known: Path, batch: str) -> list[str]:
    return [
        "sftp", "-q", "-b", "-", "-i", str(server.user_key), "-P", str(server.port),
        "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
        f"{server.user}@127.0.0.1",
    ]  # fmt: skip


def child(args: argparse.Namespace) -> None:
    """The gateway's side, in its own process (``--child download|pull``)."""
    spec = json.loads(args.child_spec)
    if args.child == "download":
        from gateway.channels.sftp import Endpoint, RemoteFile, connect

        ep = Endpoint(
            "127.0.0.1", spec["port"], spec["user"], spec["host_key"], key_file=Path(spec["key"]),
            max_requests=spec["requests"], read_size=spec["read_size"],
        )  # fmt: skip
        start = time.perf_counter()
        with connect(ep) as session:
            session.download(RemoteFile(spec["remote"], spec["size"], 0), Path(spec["target"]))
        print(f"transfer seconds: {time.perf_counter() - start:.3f}")
        return
    from gateway.runtime.sftp_pull import Puller
    from gateway.store import Archive, Store
    from gateway.workspace import load_workspace

    home = Path(spec["home"])
    workspace = load_workspace(home)
    store = Store(f"sqlite:///{home / 'var' / 'gateway.sqlite'}")
    store.upgrade()
    puller = Puller(
        workspace.partners.profiles["medsupply"], store, Archive(home / "var" / "archive"), workspace.partners,
        home=home, spool=home / "var" / "run" / "sftp",
    )  # fmt: skip
    start = time.perf_counter()
    result = puller.poll()
    print(f"transfer seconds: {time.perf_counter() - start:.3f}")
    if result.error or len(result.taken) != spec["expect"]:
        raise SystemExit(f"pull took {len(result.taken)} of {spec['expect']}: {result.error}")
    print(len(result.taken))


def deployment(root: Path, server: Sshd, remote: Path, requests: int | None, read_size: int | None) -> Path:
    import yaml

    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / "maps").symlink_to(REPO / "maps", target_is_directory=True)
    shutil.copytree(REPO / "partners", root / "partners", ignore=shutil.ignore_patterns("cases"))
    (root / "gateway.yaml").write_text(json.dumps({"store": f"sqlite:///{root / 'var' / 'gateway.sqlite'}"}))
    path = root / "partners" / "medsupply.yaml"
    profile = yaml.safe_load(path.read_text())
    profile["inbound"] = {
        "channel": "sftp", "host": "127.0.0.1", "port": server.port, "username": server.user,
        "remote_dir": str(remote), "host_key": server.host_public,
        "sftp": {"key_file": str(server.user_key), "complete": "age", "max_requests": requests, "read_size": read_size},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return root


def restore(remote: Path) -> None:
    """Put the files a pull moved to ``done/`` back."""
    done = remote / "done"
    if done.is_dir():
        for f in done.iterdir():
            os.replace(f, remote / f.name)
        done.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--requests", type=int, default=None, help="read requests in flight (default: the gateway's)")
    parser.add_argument("--read-size", type=int, default=None, help="bytes per read request (default: the gateway's)")
    parser.add_argument("--work", type=Path, default=None, help="a folder (default: a temporary one)")
    parser.add_argument("--child", choices=("download", "pull"), help=argparse.SUPPRESS)
    parser.add_argument("--child-spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-sftp-"))
    work.mkdir(parents=True, exist_ok=True)
    server = Sshd(work / "sshd")
    try:
        run(args, work, server)
    finally:
        server.stop()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path, server: Sshd) -> None:
    known = work / "known_hosts"
    known.write_text(f"[127.0.0.1]:{server.port} {server.host_public}\n")
    large_dir, small_dir = work / "remote-large", work / "remote-small"
    large_dir.mkdir(exist_ok=True)
    small_dir.mkdir(exist_ok=True)
    large = large_dir / "large.bin"
    size = args.size_mb << 20
    if not large.exists() or large.stat().st_size != size:
        block = os.urandom(1 << 20)
        with large.open("wb") as out:
            for _ in range(args.size_mb):
                out.write(block)
    sample = (REPO / "samples" / "x12" / "856-4010-medsupply-asn.edi").read_bytes()
    for n in range(args.small):
        (small_dir / f"asn-{n:05d}.edi").write_bytes(sample.replace(b"0001", f"{n:04d}".encode()[-4:]))
    me = [sys.executable, str(Path(__file__).resolve())]
    spec = {
        "port": server.port, "user": server.user, "host_key": server.host_public, "key": str(server.user_key),
        "requests": args.requests, "read_size": args.read_size,
    }  # fmt: skip
    results: dict[str, list[tuple[float, float, int, float]]] = {}
    local = work / "local"
    for _ in range(args.repeat):
        shutil.rmtree(local, ignore_errors=True)
        local.mkdir()
        results.setdefault("openssh large", []).append(
            timed(openssh(server, known, ""), f"get {large} {local / 'large.bin'}\n")
        )
        target = local / "gw.part"
        results.setdefault("gateway download", []).append(
            timed(
                [
                    *me,
                    "--child",
                    "download",
                    "--child-spec",
                    json.dumps({**spec, "remote": str(large), "size": size, "target": str(target)}),
                ]
            )
        )
        target.unlink()
        home = deployment(work / "home-large", server, large_dir, args.requests, args.read_size)
        results.setdefault("gateway pull large", []).append(
            timed([*me, "--child", "pull", "--child-spec", json.dumps({**spec, "home": str(home), "expect": 1})])
        )
        restore(large_dir)
        shutil.rmtree(local)
        local.mkdir()
        results.setdefault("openssh small", []).append(
            timed(openssh(server, known, ""), f"get {small_dir}/* {local}/\n")
        )
        home = deployment(work / "home-small", server, small_dir, args.requests, args.read_size)
        results.setdefault("gateway pull small", []).append(
            timed(
                [*me, "--child", "pull", "--child-spec", json.dumps({**spec, "home": str(home), "expect": args.small})]
            )
        )
        restore(small_dir)
    report(results, args)


def report(results: dict[str, list[tuple[float, float, int, float]]], args: argparse.Namespace) -> None:
    def median(name: str, i: int) -> float:
        return statistics.median(r[i] for r in results[name])

    print(
        f"SFTP pull on loopback: {args.size_mb} MB file, {args.small} small files; {args.repeat} runs interleaved; "
        f"gateway: {args.requests or 'default'} requests of {args.read_size or 'default'} bytes in flight"
    )
    print(f"{'':<20} {'process s':>10} {'all runs':>20} {'in-process s':>13} {'CPU s':>7} {'rate':>12} {'peak RSS':>9}")
    for name, runs in results.items():
        inner = median(name, 3)
        unit = args.small if "small" in name else args.size_mb
        rate = f"{unit / inner:.0f} files/s" if "small" in name else f"{unit / inner:.0f} MB/s"
        walls = " ".join(f"{r[0]:.2f}" for r in runs)
        print(
            f"{name:<20} {median(name, 0):>10.2f} {walls:>20} {inner:>13.2f} {median(name, 1):>7.2f} {rate:>12} "
            f"{max(r[2] for r in runs):>6} MB"
        )
    for mine, theirs in (
        ("gateway download", "openssh large"),
        ("gateway pull large", "openssh large"),
        ("gateway pull small", "openssh small"),
    ):
        print(
            f"{mine} / {theirs}: {median(mine, 3) / median(theirs, 3):.2f}x (transfer), "
            f"{median(mine, 0) / median(theirs, 0):.2f}x (whole process)"
        )


if __name__ == "__main__":
    main()
