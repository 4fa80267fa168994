"""Fetching an old site's media: private addresses never, failures with a reason."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from outlet.importers import fetching
from outlet.importers.fetching import FetchFailed, FetchRefused, media_fetch


class OldSite:
    """A tiny web server on loopback; `answers` lists (status, headers, body) per request."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.answers: list[tuple[int, dict[str, str], bytes]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests.append(self.path)
                status, headers, body = site.answers.pop(0) if site.answers else (404, {}, b"")
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def old_site() -> Iterator[OldSite]:
    site = OldSite()
    yield site
    site.stop()


@pytest.fixture
def loopback_allowed(monkeypatch) -> None:
    """The test server lives on loopback, which real imports never reach."""
    monkeypatch.setattr(fetching, "address_is_public", lambda address: True)


def test_private_and_loopback_addresses_are_never_requested(old_site):
    old_site.answers.append((200, {}, b"secret"))

    for url in (f"{old_site.url}/a.jpg", "http://localhost:9/a.jpg", "http://10.0.0.8/a.jpg"):
        with pytest.raises(FetchRefused, match="private address"):
            media_fetch(url=url, max_bytes=1000)

    assert old_site.requests == []


def test_only_http_addresses_are_fetched():
    with pytest.raises(FetchRefused, match="only http and https"):
        media_fetch(url="file:///etc/passwd", max_bytes=1000)


def test_a_file_is_fetched_after_a_temporary_failure(old_site, loopback_allowed):
    old_site.answers += [(503, {}, b""), (200, {}, b"jpeg bytes")]

    assert media_fetch(url=f"{old_site.url}/a.jpg", max_bytes=1000, backoff=0) == b"jpeg bytes"
    assert old_site.requests == ["/a.jpg", "/a.jpg"]


def test_a_missing_file_fails_at_once_with_the_answer(old_site, loopback_allowed):
    with pytest.raises(FetchFailed, match="the server answered 404"):
        media_fetch(url=f"{old_site.url}/gone.jpg", max_bytes=1000, backoff=0)
    assert len(old_site.requests) == 1


def test_a_file_over_the_size_limit_is_refused(old_site, loopback_allowed):
    old_site.answers.append((200, {}, b"x" * 2000))

    with pytest.raises(FetchRefused, match="2000 bytes; at most 1000"):
        media_fetch(url=f"{old_site.url}/big.jpg", max_bytes=1000)


def test_a_redirect_to_a_private_address_is_not_followed(old_site, monkeypatch):
    monkeypatch.setattr(fetching, "address_is_public", lambda address: address == "127.0.0.1")
    old_site.answers.append((302, {"Location": "http://10.1.2.3/internal"}, b""))

    with pytest.raises(FetchRefused, match="private address"):
        media_fetch(url=f"{old_site.url}/a.jpg", max_bytes=1000)


def _export_with_images_at(tmp_path, base_url):
    from tests.importers.test_wordpress_import import EXPORT

    export = tmp_path / "export.xml"
    export.write_text(EXPORT.read_text().replace("https://old.example.org/wp-content", base_url))
    return export


def _jpeg() -> bytes:
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (640, 480), "olive").save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.mark.django_db
def test_media_from_site_stores_fetched_images(old_site, loopback_allowed, tmp_path, settings):
    from outlet.articles.models import Article, ArticleImage
    from outlet.importers.services import archive_import

    settings.MEDIA_ROOT = tmp_path / "media"
    old_site.answers.append((200, {}, _jpeg()))
    export = _export_with_images_at(tmp_path, f"{old_site.url}/wp-content")

    report = archive_import(source="wordpress", path=export, media_from_site=True)

    assert old_site.requests == ["/wp-content/uploads/2019/05/flood.jpg"]
    assert ArticleImage.objects.get().width == 640
    assert Article.objects.get(slug="flood-night").featured_image
    assert report.counts["images"]["imported"] == 1


@pytest.mark.django_db
def test_media_from_site_never_requests_a_private_address(old_site, tmp_path, settings):
    from outlet.articles.models import Article
    from outlet.importers.services import archive_import

    settings.MEDIA_ROOT = tmp_path / "media"
    export = _export_with_images_at(tmp_path, f"{old_site.url}/wp-content")

    report = archive_import(source="wordpress", path=export, media_from_site=True)

    assert old_site.requests == []
    assert any(
        p.startswith("failed image 30 2019/05/flood.jpg: could not fetch")
        and "private address" in p
        for p in report.problems
    )
    assert Article.objects.get(slug="flood-night").is_public  # the post came across regardless


def test_the_host_is_resolved_once_and_the_checked_address_connected_to(old_site, monkeypatch):
    # DNS rebinding: a name that is public when checked and private a moment later.
    import socket

    port = old_site.server.server_address[1]
    answers = iter(["127.0.0.1"])  # the one answer the check sees (allowed below)
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host != "rebind.test":
            return real_getaddrinfo(host, *args, **kwargs)
        address = next(answers)  # a second lookup of the name fails the test
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(fetching, "address_is_public", lambda address: address == "127.0.0.1")
    old_site.answers.append((200, {}, b"the picture"))

    assert media_fetch(url=f"http://rebind.test:{port}/a.jpg", max_bytes=1000) == b"the picture"
    assert old_site.requests == ["/a.jpg"]


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a00:5",  # NAT64 of 10.0.0.5: an IPv6-only host's gateway reaches it
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254, the cloud's metadata
        "::127.0.0.1",  # IPv4-compatible loopback
        "::ffff:10.0.0.1",  # IPv4-mapped private
    ],
)
def test_ipv6_addresses_that_carry_a_private_ipv4_address_are_not_public(address):
    assert not fetching.address_is_public(address)


def test_public_addresses_stay_public():
    assert fetching.address_is_public("93.184.215.14")
    assert fetching.address_is_public("64:ff9b::5db8:d70e")  # NAT64 of a public address
    assert fetching.address_is_public("2606:2800:21f:cb07:6820:80da:af6b:8b2c")


def test_a_server_sending_a_file_slowly_is_given_up_on_at_the_deadline(
    old_site, loopback_allowed, monkeypatch
):
    """A byte at a time under the read timeout must not hold the import for ever."""
    ticks = iter(range(0, 10_000, 10))  # each look at the clock: ten seconds later
    monkeypatch.setattr(fetching, "_clock", lambda: next(ticks))
    old_site.answers.append((200, {}, b"x" * (64 * 1024 * 20)))

    with pytest.raises(FetchFailed, match="longer than 60 seconds"):
        media_fetch(url=f"{old_site.url}/slow.jpg", max_bytes=10**8, deadline=60)
