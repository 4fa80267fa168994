"""The importers' one door to other sites: fetching an old site's media, safely.

- Only http and https. The host is resolved once and every address it resolves to
  must be public (`ipaddress.is_global`): loopback, private, link-local (cloud
  metadata), shared, reserved and multicast addresses are never connected to, nor an
  IPv6 address that carries one (NAT64, IPv4-compatible).
- The connection goes to the address that was checked (a urllib3 pool on the IP,
  with the host name for SNI and the certificate check), so a DNS answer that
  changes between the check and the connection cannot steer it elsewhere.
- Redirects are followed by hand, each hop checked again, at most MAX_REDIRECTS.
- Connect and read timeouts, and a deadline for the whole file (a server sending a
  byte at a time under the read timeout never holds the import); a size cap
  (announced length and counted while reading); retries with backoff for temporary
  failures only (connection errors, 429 and 5xx answers).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3

MAX_REDIRECTS = 3
USER_AGENT = "outlet-archive-import/1.0"
_TEMPORARY_STATUSES = {429, 500, 502, 503, 504}
#: Seconds one file may take, redirects and retries included.
DEADLINE = 120.0
_clock = time.monotonic


class FetchRefused(Exception):
    """Not fetched and not worth retrying; the message says why, for the report."""


class FetchFailed(Exception):
    """Fetching failed after its retries; the message says why, for the report."""


#: IPv6 prefixes whose last 32 bits are an IPv4 address the network delivers to: NAT64
#: (RFC 6052; an IPv6-only host's gateway reaches private IPv4 ranges through it) and the
#: old IPv4-compatible form. Python counts both as global whatever the IPv4 address.
_EMBEDDED_IPV4 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("::/96"))


def address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and any(ip in net for net in _EMBEDDED_IPV4):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF).is_global
    return ip.is_global


def address_check(host: str, port: int) -> str:
    """The one public address to connect to for `host`, or FetchRefused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchFailed(f"{host} could not be resolved") from exc
    addresses = {str(info[4][0]) for info in infos}
    private = sorted(a for a in addresses if not address_is_public(a))
    if private or not addresses:
        raise FetchRefused(
            f"{host} points at a private address ({', '.join(private)}); not fetched"
        )
    return sorted(addresses)[0]


def _get_once(
    url: str, *, max_bytes: int, timeout: float, until: float, deadline: float
) -> tuple[int, str, bytes]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchRefused(f"only http and https addresses are fetched, not {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = address_check(parts.hostname, port)
    limits = urllib3.Timeout(connect=timeout, read=timeout)
    pool: urllib3.HTTPConnectionPool
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            port=port,
            server_hostname=parts.hostname,
            assert_hostname=parts.hostname,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            timeout=limits,
            retries=False,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, port=port, timeout=limits, retries=False)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        response = pool.urlopen(
            "GET",
            target,
            headers={"Host": parts.netloc, "User-Agent": USER_AGENT},
            redirect=False,
            preload_content=False,
        )
        try:
            announced = int(response.headers.get("Content-Length") or 0)
            if announced > max_bytes:
                raise FetchRefused(f"the file is {announced} bytes; at most {max_bytes} are taken")
            body = bytearray()
            if response.status == 200:
                for chunk in response.stream(64 * 1024):
                    body += chunk
                    if len(body) > max_bytes:
                        raise FetchRefused(f"the file is over {max_bytes} bytes; not taken")
                    if _clock() > until:
                        raise FetchFailed(f"the server took longer than {deadline:g} seconds")
            return response.status, response.headers.get("Location", ""), bytes(body)
        finally:
            response.release_conn()
    finally:
        pool.close()


def media_fetch(
    *,
    url: str,
    max_bytes: int,
    timeout: float = 10.0,
    retries: int = 2,
    backoff: float = 0.5,
    deadline: float = DEADLINE,
) -> bytes:
    """The body of `url` (a 200 answer), following checked redirects; FetchRefused or
    FetchFailed with a reason otherwise."""
    until = _clock() + deadline
    attempt = 0
    hops = 0
    while True:
        if _clock() > until:
            raise FetchFailed(f"the server took longer than {deadline:g} seconds")
        try:
            status, location, body = _get_once(
                url, max_bytes=max_bytes, timeout=timeout, until=until, deadline=deadline
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            status, location, body, problem = 0, "", b"", f"{type(exc).__name__}"
        else:
            problem = f"the server answered {status}"
        if status == 200:
            return body
        if status in (301, 302, 303, 307, 308) and location:
            hops += 1
            if hops > MAX_REDIRECTS:
                raise FetchFailed(f"more than {MAX_REDIRECTS} redirects")
            url = urljoin(url, location)
            continue
        if status and status not in _TEMPORARY_STATUSES:
            raise FetchFailed(problem)
        attempt += 1
        if attempt > retries:
            raise FetchFailed(f"{problem} (after {retries + 1} tries)")
        time.sleep(backoff * 2 ** (attempt - 1))
