"""A local HTTP endpoint in the shape of Mailgun's messages API, for anymail's real
Mailgun backend: it answers as Mailgun documents (`{"id": ..., "message": "Queued.
Thank you."}`) and records each recipient's copy with the merge data filled in as
Mailgun would (`%recipient.key%`), so tests and the drill see what readers get.

`failing` makes it answer 503 to everything (an outage); `stop()` closes the port
(unreachable); a call naming an address in `invalid` is refused whole with 400, as
Mailgun refuses a call with one address it cannot parse. The probe
`mail_server_available` uses is any request to the API base.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from tests.conftest import free_port

_VARIABLE = re.compile(r"%recipient\.([\w:.-]+)%")


class MailgunEndpoint:
    def __init__(self) -> None:
        self.failing = False
        #: The status a failing endpoint answers (503: an outage; 401: a refused key).
        self.failing_status = 503
        self.calls = 0
        #: Addresses that make Mailgun refuse the whole call (400).
        self.invalid: set[str] = set()
        #: (recipient, subject, text, html) per accepted copy
        self.copies: list[tuple[str, str, str, str]] = []
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                if endpoint.failing:
                    self._answer(503, {"message": "Service Unavailable"})
                else:
                    self._answer(404, {"message": "Not found"})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if endpoint.failing:
                    self._answer(endpoint.failing_status, {"message": "Service Unavailable"})
                    return
                if not self.path.endswith("/messages"):
                    self._answer(404, {"message": "Not found"})
                    return
                fields = _form_fields(self.headers.get("Content-Type", ""), raw)
                named = {re.sub(r".*<([^>]+)>.*", r"\1", to) for to in fields.get("to", [])}
                if named & endpoint.invalid:
                    message = "'to' parameter is not a valid address. please check documentation"
                    self._answer(400, {"message": message})
                    return
                variables = json.loads(fields.get("recipient-variables", ["{}"])[0])
                with endpoint._lock:
                    endpoint.calls += 1
                    for to in fields.get("to", []):
                        address = re.sub(r".*<([^>]+)>.*", r"\1", to)
                        values = variables.get(address, {})

                        def fill(text: str, values=values) -> str:
                            return _VARIABLE.sub(lambda m: str(values.get(m.group(1), "")), text)

                        endpoint.copies.append(
                            (
                                address,
                                fields.get("subject", [""])[0],
                                fill(fields.get("text", [""])[0]),
                                fill(fields.get("html", [""])[0]),
                            )
                        )
                self._answer(
                    200, {"id": f"<{endpoint.calls}@drill>", "message": "Queued. Thank you."}
                )

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v3/"

    def anymail_settings(self) -> dict[str, str]:
        return {"MAILGUN_API_KEY": "key-drill", "MAILGUN_API_URL": self.api_url}

    def per_recipient(self) -> Counter:
        with self._lock:
            return Counter(address for address, *_ in self.copies)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _form_fields(content_type: str, raw: bytes) -> dict[str, list[str]]:
    """The form anymail's Mailgun backend posts (urlencoded, or multipart with
    attachments) as name -> values."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        return parse_qs(raw.decode(), keep_blank_values=True)
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    fields: dict[str, list[str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields.setdefault(name, []).append(part.get_content())
    return fields
