"""Two hosts on one machine: a robot and a base station as two network namespaces joined by a veth pair, each way
rate-limited by a token bucket (tc tbf), the server's ingress losing UDP at random (nftables), in one of two units:
"packet" drops IP packets on the veth's netdev ingress hook, each fragment of a large datagram on its own, as a radio
loses frames; "datagram" drops on the input hook, after the kernel reassembled the fragments, whatever their count.

Every packet stays inside the namespaces this module makes; they are removed on leaving, on failure too. Needs root
and iproute2 (`ip`, `tc`) and nftables (`nft`): ``unavailable()`` says which is missing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

CLONE_NEWNET = 0x40000000  # setns(2): join a network namespace
RATE = "20mbit"  # each way: a Wi-Fi link's useful rate under load
SUBNET = "10.213.{}.{}"
NFT_TABLE = "lossy_link"
LOSS_UNITS = ("packet", "datagram")


def unavailable() -> str | None:
    """Why namespaces cannot be made here (one line), or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [tool for tool in ("ip", "tc", "nft") if shutil.which(tool) is None]
    if missing:
        return f"no {', '.join(missing)}: apt-get install iproute2 nftables"
    return None


def _run(*command: str, namespace: str | None = None) -> str:
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    done = subprocess.run([*prefix, *command], capture_output=True, text=True)
    if done.returncode != 0:
        raise OSError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class LinkCounters:
    dropped_packets: int  # by the loss rule, robot -> server
    robot_to_server_bytes: int  # sent by the robot's veth (tbf)
    server_to_robot_bytes: int


class Link:
    """The two namespaces (``robot``, ``server``), their addresses, the loss rule and the byte counters."""

    def __init__(self, run_id: str, subnet_octet: int):
        self.robot, self.server = f"hw-{run_id}-robot", f"hw-{run_id}-server"
        self.robot_veth, self.server_veth = f"hwr{run_id}", f"hws{run_id}"
        self.robot_address, self.server_address = (SUBNET.format(subnet_octet, host) for host in (1, 2))

    def create(self) -> None:
        for namespace in (self.robot, self.server):
            _run("ip", "netns", "add", namespace)
            _run("ip", "link", "set", "lo", "up", namespace=namespace)
        _run("ip", "link", "add", self.robot_veth, "netns", self.robot, "type", "veth",
             "peer", "name", self.server_veth, "netns", self.server)
        for namespace, veth, address in ((self.robot, self.robot_veth, self.robot_address),
                                         (self.server, self.server_veth, self.server_address)):
            _run("ip", "addr", "add", f"{address}/24", "dev", veth, namespace=namespace)
            _run("ip", "link", "set", veth, "up", namespace=namespace)
            # DDS discovery's multicast (239.255.0.1) goes out on the link: no default route here.
            _run("ip", "route", "add", "224.0.0.0/4", "dev", veth, namespace=namespace)
            _run("tc", "qdisc", "add", "dev", veth, "root", "tbf", "rate", RATE, "burst", "32kb", "latency", "400ms",
                 namespace=namespace)
        self.set_loss(0)

    def set_loss(self, percent: int, unit: str = "packet") -> None:
        """Replaces the server's ingress rule: ``percent`` of the UDP packets or datagrams (LOSS_UNITS) dropped at
        random."""
        if not 0 <= percent <= 100 or unit not in LOSS_UNITS:
            raise ValueError(f"loss must be 0..100 % of one of {LOSS_UNITS}, not {percent} % of {unit!r}")
        drop = f"numgen random mod 100 < {percent} counter drop"
        hook = (f"type filter hook ingress device {self.server_veth} priority 0;\n  meta protocol ip ip protocol udp"
                if unit == "packet" else "type filter hook input priority 0;\n  meta l4proto udp")
        rules = "".join(f"table {kind} {NFT_TABLE}\ndelete table {kind} {NFT_TABLE}\n" for kind in ("netdev", "ip"))
        family = "netdev" if unit == "packet" else "ip"
        rules += f"table {family} {NFT_TABLE} {{\n chain ingress {{\n  {hook} {drop}\n }}\n}}\n"
        done = subprocess.run(["ip", "netns", "exec", self.server, "nft", "-f", "-"], input=rules, text=True,
                              capture_output=True)
        if done.returncode != 0:
            raise OSError(f"nft: {done.stderr.strip()}")

    def counters(self) -> LinkCounters:
        ruleset = _run("nft", "list", "tables", namespace=self.server)
        family = "netdev" if "netdev" in ruleset else "ip"
        ruleset = _run("nft", "list", "table", family, NFT_TABLE, namespace=self.server)
        dropped = re.search(r"counter packets (\d+)", ruleset)
        return LinkCounters(int(dropped.group(1)) if dropped else 0, self._sent_bytes(self.robot, self.robot_veth),
                            self._sent_bytes(self.server, self.server_veth))

    @staticmethod
    def _sent_bytes(namespace: str, veth: str) -> int:
        sent = re.search(r"Sent (\d+) bytes", _run("tc", "-s", "qdisc", "show", "dev", veth, namespace=namespace))
        return int(sent.group(1)) if sent else 0

    def remove(self) -> None:
        """Deletes both namespaces (the veth pair goes with them); quiet about what was never made."""
        for namespace in (self.robot, self.server):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


@contextlib.contextmanager
def lossy_link() -> Iterator[Link]:
    """A new Link, names unique to this run, removed on leaving however it is left."""
    run_id = uuid.uuid4().hex[:6]
    link = Link(run_id, int(run_id[:2], 16))
    try:
        link.create()
        yield link
    finally:
        link.remove()


@contextlib.contextmanager
def entered(namespace: str) -> Iterator[None]:
    """This thread (and the threads it starts meanwhile: DDS's, an executor's) in ``namespace``'s network, then
    back in the one it was in."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{namespace}") as target:
        if libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {namespace}")
        try:
            yield
        finally:
            libc.setns(home.fileno(), CLONE_NEWNET)
