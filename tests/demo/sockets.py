"""What a process leaves behind, read from /proc: its listening TCP sockets and its child processes."""

from __future__ import annotations

import os
import socket
from pathlib import Path

LISTEN = "0A"


def listening_ports(pid: int | None = None) -> set[int]:
    """Ports of the TCP (v4 and v6) sockets in LISTEN state owned by `pid` (default: this process)."""
    proc = Path(f"/proc/{pid or os.getpid()}")
    inodes = set()
    for fd in (proc / "fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed while we looked
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == LISTEN and inode in inodes:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def children(pid: int | None = None) -> list[tuple[int, str]]:
    """(pid, command name) of the live child processes of `pid` (default: this process)."""
    parent = pid or os.getpid()
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == parent and fields[0] != "Z":
            out.append((int(entry.name), name))
    return out


def accepts(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0
