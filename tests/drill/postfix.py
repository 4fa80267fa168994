"""A private Postfix instance for the bounce drill: its own config_directory, queue_directory
and data_directory under var/, smtpd on a loopback port of its own, its log in a file.

Debian's system Postfix (if any) is never touched: `postfix -c DIR` runs a second master
from DIR, as `postmulti` would, without registering it in /etc/postfix. Run as root (the
master needs it; its daemons drop to the `postfix` user the package creates).
"""

from __future__ import annotations

import pwd
import shutil
import subprocess
import time
from pathlib import Path

POSTFIX = "/usr/sbin/postfix"

MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
virtual   unix  - n n - - virtual
lmtp      unix  - - n - - lmtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

BASE_MAIN_CF = """\
compatibility_level = 3.6
mail_owner = postfix
setgid_group = postdrop
myhostname = {hostname}
mydomain = drill.test
myorigin = {hostname}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/postfix.log
maillog_file_prefixes = {root}
smtputf8_enable = no
biff = no
append_dot_mydomain = no
recipient_delimiter = +
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_banner = $myhostname ESMTP
# The drill runs in seconds: retry a deferred message at once, give up on none early.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtp_connect_timeout = 5s
"""


class PostfixInstance:
    def __init__(self, root: Path, *, hostname: str, port: int, main_cf: str) -> None:
        self.root = root
        self.port = port
        if root.exists():
            shutil.rmtree(root)
        (root / "etc").mkdir(parents=True)
        for sub in ("queue", "data"):
            (root / sub).mkdir()
        shutil.chown(root / "data", "postfix")
        (root / "etc" / "main.cf").write_text(
            BASE_MAIN_CF.format(hostname=hostname, root=root) + main_cf
        )
        (root / "etc" / "master.cf").write_text(MASTER_CF.format(listen=f"127.0.0.1:{port}"))

    @property
    def config(self) -> str:
        return str(self.root / "etc")

    def start(self) -> None:
        subprocess.run([POSTFIX, "-c", self.config, "check"], check=True)
        subprocess.run([POSTFIX, "-c", self.config, "start"], check=True, capture_output=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            import socket

            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"Postfix in {self.root} did not listen: {self.log()[-2000:]}")

    def stop(self) -> None:
        subprocess.run([POSTFIX, "-c", self.config, "stop"], check=False, capture_output=True)

    def queue_empty(self) -> bool:
        listing = subprocess.run(
            ["/usr/sbin/postqueue", "-c", self.config, "-j"], capture_output=True, check=False
        )
        return not listing.stdout.strip()

    def flush(self) -> None:
        subprocess.run(["/usr/sbin/postqueue", "-c", self.config, "-f"], check=False)

    def log(self) -> str:
        path = self.root / "postfix.log"
        return path.read_text(errors="replace") if path.exists() else ""


def mailbox_owner() -> tuple[int, int]:
    """The uid/gid virtual(8) delivers as: nobody (never root)."""
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid
