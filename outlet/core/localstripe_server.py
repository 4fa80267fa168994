"""`python -m outlet.core.localstripe_server --port N [--from-scratch]`: localstripe (the fake
Stripe API of development and tests) keeping its objects in LOCALSTRIPE_STORE, or nowhere.

localstripe itself saves every object to /tmp/localstripe.pickle, one file for every
localstripe on the machine: a fresh `make run` loaded the customers and subscriptions of
other stacks and of test runs (and offered to adopt them), `make clean` left them, and two
processes rewriting the file at once could leave it cut short. `make run` gives its own
file under var/; tests, which start from scratch, give none. Writes go to a temporary file
renamed into place, so a reader never sees half a store.

localstripe keeps every event it sends (with the store) and lists them at GET /v1/events,
`created[gte]` and paging included: a restore's Stripe replay reads them from there through
stripe_gateway.events_list, as it reads real Stripe's.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from localstripe import resources

from outlet.core import localstripe_elements

# Before `localstripe.server` binds its routes (see localstripe_elements).
localstripe_elements.install()

from localstripe import server  # noqa: E402


def _store_path() -> Path | None:
    path = os.environ.get("LOCALSTRIPE_STORE", "")
    return Path(path) if path else None


def _load(store: resources.Store) -> None:
    path = _store_path()
    if path is None:
        return
    try:
        saved = pickle.loads(path.read_bytes())  # noqa: S301 (our own file, written below)
    except (FileNotFoundError, EOFError, pickle.UnpicklingError):
        return
    dict.clear(store)
    dict.update(store, saved)  # not Store.update: that would save once per object


def _dump(store: resources.Store) -> None:
    path = _store_path()
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    partial.write_bytes(pickle.dumps(dict(store), protocol=pickle.HIGHEST_PROTOCOL))
    partial.replace(path)


def _auth_with_elements(original: Any) -> Any:
    """localstripe's auth middleware, also letting the publishable key confirm a
    PaymentIntent with its client secret (what Stripe.js does)."""

    @server.web.middleware
    async def auth(request: Any, handler: Any) -> Any:
        if request.method == "POST" and request.path.startswith("/v1/payment_intents/"):
            data = await server.get_post_data(request, remove_auth=False)
            if localstripe_elements.publishable_key_allowed(request.method, request.path, data):
                return await handler(request)
        return await original(request, handler)

    return auth


def main() -> None:
    middlewares = server.app.middlewares
    index = list(middlewares).index(server.auth_middleware)
    middlewares[index] = _auth_with_elements(server.auth_middleware)
    resources.Store.try_load_from_disk = _load  # type: ignore[method-assign]
    resources.Store.dump_to_disk = _dump  # type: ignore[method-assign]
    server.start()


if __name__ == "__main__":
    main()
