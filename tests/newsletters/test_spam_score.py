"""SpamAssassin (Debian's, its packaged rules) scores an issue copy DKIM-signed by outlet no
worse than the same copy unsigned, and sees the signature as valid: its DNS questions go to
a resolver on loopback that publishes the test key (and nothing else: no blocklists, no
network). Skipped, saying so, without `spamassassin` (`make spamassassin` installs it)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading

import pytest

from tests.conftest import free_port
from tests.newsletters.test_dkim_signing import send_issue, signing  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not shutil.which("spamassassin"),
        reason="SpamAssassin is missing: apt-get install spamassassin (make spamassassin)",
    ),
]

_STATUS = re.compile(r"X-Spam-Status: \w+, score=(-?[\d.]+) .*?tests=([^\n]*(?:\n\s+[^\n]*)*)")


class KeyResolver:
    """A DNS server on loopback (UDP) answering TXT for the DKIM key's name, NXDOMAIN else."""

    def __init__(self, name: str, record: bytes) -> None:
        import dns.message
        import dns.rcode
        import dns.rdataclass
        import dns.rdatatype
        import dns.rrset

        self.port = free_port()
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", self.port))
        self.running = True
        strings = " ".join(f'"{record[i : i + 255].decode()}"' for i in range(0, len(record), 255))

        def serve() -> None:
            while self.running:
                try:
                    data, peer = self.socket.recvfrom(4096)
                except OSError:
                    return
                query = dns.message.from_wire(data)
                answer = dns.message.make_response(query)
                question = query.question[0]
                if question.name.to_text().lower() == name and question.rdtype == (
                    dns.rdatatype.TXT
                ):
                    answer.answer.append(
                        dns.rrset.from_text(question.name, 300, "IN", "TXT", strings)
                    )
                else:
                    answer.set_rcode(dns.rcode.NXDOMAIN)
                self.socket.sendto(answer.to_wire(), peer)

        threading.Thread(target=serve, daemon=True).start()

    def stop(self) -> None:
        self.running = False
        self.socket.close()


def spam_score(message: bytes, *, resolver_port: int, home) -> tuple[float, str]:
    result = subprocess.run(
        ["spamassassin", "-t", "--cf", f"dns_server 127.0.0.1:{resolver_port}",
         "--cf", "dns_available yes", "--cf", "skip_rbl_checks 1",
         "--cf", "use_bayes 0", "--cf", "use_razor2 0", "--cf", "use_pyzor 0"],
        input=message, capture_output=True, timeout=120,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    found = _STATUS.search(result.stdout.decode("utf-8", "replace"))
    assert found, result.stderr[-2000:]
    return float(found.group(1)), "".join(found.group(2).split())


def test_a_signed_issue_scores_no_worse_than_the_same_issue_unsigned(signing, daily, tmp_path):  # noqa: F811
    sink, dnsfunc = signing
    send_issue(daily, readers=1)
    copy = next(raw for _, raw in sink.messages if b"Maps, money" in raw)
    assert copy.startswith(b"DKIM-Signature:")
    unsigned = re.sub(rb"\ADKIM-Signature:.*?\r?\n(?=\S)", b"", copy, flags=re.DOTALL)
    assert not unsigned.startswith(b"DKIM-Signature") and unsigned != copy
    resolver = KeyResolver(
        "news2026._domainkey.outlet.test.", dnsfunc(b"news2026._domainkey.outlet.test.")
    )
    try:
        signed_score, signed_rules = spam_score(copy, resolver_port=resolver.port, home=tmp_path)
        plain_score, plain_rules = spam_score(unsigned, resolver_port=resolver.port, home=tmp_path)
    finally:
        resolver.stop()
    print(f"spamassassin: signed={signed_score} ({signed_rules})")
    print(f"spamassassin: unsigned={plain_score} ({plain_rules})")

    assert "DKIM_VALID" in signed_rules.split(","), signed_rules
    assert "DKIM_INVALID" not in signed_rules
    assert signed_score <= plain_score
