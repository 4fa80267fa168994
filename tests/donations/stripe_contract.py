"""
A stub Stripe for the SDK, checked against the SDK's own description of its API version.

`StubStripe` is an `HTTPClient` the gateway's `StripeClient` sends through instead of the
network. It records every request and answers with current-shape objects built from
Stripe's published examples (`fixtures/stripe-current-*.json`, from stripe/openapi's
fixtures3.json). Every request is checked against the pinned SDK:

- the endpoint (method and path) must be one the SDK's services call;
- every parameter, nested ones included, must be a key of that endpoint's
  `stripe.params.*Params` TypedDict, and a value the type names as a Literal must be one
  of its literals;
- every `expand` path must walk through fields of the resource classes' annotations
  (`stripe.Subscription.latest_invoice` -> `stripe.Invoice.confirmation_secret`), and
  end on a field Stripe can expand (an id-or-object field) or include on request
  (`INCLUDABLE`); the stub leaves an includable field out unless asked for;
- the request must carry the SDK's own API version (no per-call downgrade).

The map from endpoint to params type and resource is read from the SDK's service
modules, not written by hand, so it says what Stripe's SDK says, not what we assume.
"""

from __future__ import annotations

import copy
import json
import re
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin
from urllib.parse import parse_qsl, urlsplit

import stripe
import stripe.params
from stripe._http_client import HTTPClient
from typing_extensions import is_typeddict

from tests.donations.stripe_events import current_object

# --- What the SDK says -----------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str
    pattern: re.Pattern[str]
    params: type | None
    resource: str  # e.g. "Subscription" or "ListObject[InvoicePayment]"


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_DEF = re.compile(r"\n    def (\w+)\(\s*self,(?P<args>.*?)\)\s*->\s*\"(?P<ret>[^\"]+)\":", re.S)
_CALL = re.compile(r"self\._request\(\s*\"(?P<method>\w+)\",\s*\"(?P<path>/v1/[^\"]+)\"", re.S)
_PARAMS = re.compile(r"params:\s*(?:Optional\[)?\"(\w+)\"")


@cache
def sdk_endpoints() -> list[Endpoint]:
    """Every v1 endpoint the SDK's services call, with its params type and resource."""
    endpoints = []
    for source_file in sorted(Path(stripe.__file__).parent.glob("_*_service.py")):
        text = source_file.read_text()
        starts = list(_DEF.finditer(text))
        for index, definition in enumerate(starts):
            end = starts[index + 1].start() if index + 1 < len(starts) else len(text)
            body = text[definition.end() : end]
            body = body.split("\n    async def ", 1)[0]
            call = _CALL.search(body)
            if call is None:
                continue
            params_name = _PARAMS.search(definition.group("args"))
            params = getattr(stripe.params, params_name.group(1)) if params_name else None
            template = call.group("path")
            regex = re.sub(r"\\\{\w+\\\}", r"[^/]+", re.escape(template))
            endpoints.append(
                Endpoint(
                    method=call.group("method"),
                    template=template,
                    pattern=re.compile(f"^{regex}$"),
                    params=params,
                    resource=definition.group("ret"),
                )
            )
    # A literal segment ("/v1/subscriptions/search") beats a placeholder.
    endpoints.sort(key=lambda endpoint: endpoint.template.count("{"))
    return endpoints


def endpoint_for(method: str, path: str) -> Endpoint | None:
    for endpoint in sdk_endpoints():
        if endpoint.method == method and endpoint.pattern.match(path):
            return endpoint
    return None


def _unwrap_optional(tp: Any) -> list[Any]:
    if get_origin(tp) is Union:
        return [arg for arg in get_args(tp) if arg is not type(None)]
    return [tp]


def _check_value(value: Any, tp: Any, where: str) -> list[str]:
    """Problems with `value` (form-decoded: strings, dicts, lists) as a `tp`."""
    if tp is Any or tp is object:
        return []
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        attempts = [_check_value(value, arg, where) for arg in get_args(tp)]
        return [] if any(not problems for problems in attempts) else min(attempts, key=len)
    if origin is Literal:
        allowed = {str(arg).lower() if isinstance(arg, bool) else str(arg) for arg in get_args(tp)}
        return [] if str(value) in allowed else [f"{where}={value!r} is not one of {allowed}"]
    if origin in (list, typing.List):  # noqa: UP006
        if not isinstance(value, list):
            return [f"{where} should be a list"]
        (item_type,) = get_args(tp)
        return [
            p
            for i, item in enumerate(value)
            for p in _check_value(item, item_type, f"{where}[{i}]")
        ]
    if origin in (dict, typing.Dict):  # noqa: UP006
        if not isinstance(value, dict):
            return [f"{where} should be a map"]
        value_type = get_args(tp)[1]
        return [p for k, v in value.items() for p in _check_value(v, value_type, f"{where}[{k}]")]
    if isinstance(tp, type) and is_typeddict(tp):
        if not isinstance(value, dict):
            return [f"{where} should be an object of {tp.__name__}"]
        hints = _hints(tp)
        problems = []
        for key, item in value.items():
            if key not in hints:
                problems.append(f"{where}.{key} is not a parameter of {tp.__name__}")
            else:
                problems += _check_value(item, hints[key], f"{where}.{key}")
        return problems
    if isinstance(value, (dict, list)):
        return [f"{where} should be a single value ({getattr(tp, '__name__', tp)})"]
    return []


@cache
def _hints(params_type: type) -> dict[str, Any]:
    # RequestOptions names StripeContext only under TYPE_CHECKING; it never reaches a body.
    return typing.get_type_hints(params_type, localns={**vars(typing), "StripeContext": Any})


def check_params(params: dict[str, Any], params_type: type) -> list[str]:
    return _check_value(params, params_type, params_type.__name__)


def _resolve(name: str, owner: type | None) -> Any:
    name = name.strip("\"'")
    if owner is not None:
        for klass in owner.__mro__:
            if name in vars(klass):
                return vars(klass)[name]
    return getattr(stripe, name)


def _field_class(tp: Any, owner: type) -> type | None:
    """The class a field holds: through Optional, ExpandableField, ListObject and List."""
    if isinstance(tp, str):
        tp = _resolve(tp, owner)
    if isinstance(tp, typing.ForwardRef):
        tp = _resolve(tp.__forward_arg__, owner)
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            found = _field_class(arg, owner) if arg not in (str, type(None)) else None
            if found is not None:
                return found
        return None
    if origin is not None and get_args(tp):
        if origin is stripe.ListObject or origin in (list, typing.List):  # noqa: UP006
            return _field_class(get_args(tp)[0], owner)
        return _field_class(get_args(tp)[0], owner)
    return tp if isinstance(tp, type) else None


# Fields Stripe leaves out of an object unless an `expand` path names them ("includable"),
# by resource class: the SDK types them as plain objects, so they are listed here.
# (Stripe's reference marks both "Expandable" on the invoice although the SDK types them as
# plain fields: `confirmation_secret`, and `payments`, which stripe_adopt asks for.)
INCLUDABLE: dict[str, set[str]] = {"Invoice": {"confirmation_secret", "payments"}}
_INCLUDABLE_BY_OBJECT = {"invoice": INCLUDABLE["Invoice"]}


def _is_expandable(tp: Any, owner: type) -> bool:
    """An id-or-object field (`ExpandableField[X]`, i.e. `Union[str, X]`)."""
    if isinstance(tp, str):
        return "ExpandableField" in tp or bool(re.search(r"Union\[\s*str\s*,", tp))
    for arg in get_args(tp) if get_origin(tp) in (Union, types.UnionType) else ():
        if get_origin(arg) in (Union, types.UnionType) and _is_expandable(arg, owner):
            return True
    args = get_args(tp) if get_origin(tp) in (Union, types.UnionType) else ()
    return str in args and _field_class(tp, owner) is not None


def check_expand(path: str, resource: str) -> list[str]:
    """Problems with an `expand` path on the endpoint's resource (walked through the
    resource classes' annotations; on a list, the path starts with `data`)."""
    listed = re.fullmatch(r"ListObject\[\"?(\w+)\"?\]", resource)
    owner: type = getattr(stripe, listed.group(1) if listed else resource)
    segments = path.split(".")
    if listed:
        if segments[0] != "data":
            return [f"expand {path!r} on a list must start with data"]
        segments = segments[1:]
    walked = owner.__name__
    for segment in segments:
        annotations: dict[str, Any] = {}
        for klass in reversed(owner.__mro__):
            annotations.update(getattr(klass, "__annotations__", {}))
        if segment not in annotations:
            return [f"expand {path!r}: {walked} has no field {segment!r}"]
        next_owner = _field_class(annotations[segment], owner)
        if next_owner is None:
            return [f"expand {path!r}: {walked}.{segment} is not an object"]
        last = segment == segments[-1]
        includable = segment in INCLUDABLE.get(owner.__name__, set())
        if last and not includable and not _is_expandable(annotations[segment], owner):
            return [f"expand {path!r}: {walked}.{segment} is neither expandable nor includable"]
        owner, walked = next_owner, f"{walked}.{segment}"
    return []


# --- Form decoding -----------------------------------------------------------------------


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        value = {key: _listify(item) for key, item in value.items()}
        if value and all(key.isdigit() for key in value):
            return [value[key] for key in sorted(value, key=int)]
    return value


def form_decode(encoded: str) -> dict[str, Any]:
    """`items[0][plan]=x&expand[0]=y` -> {"items": [{"plan": "x"}], "expand": ["y"]}."""
    tree: dict[str, Any] = {}
    for key, value in parse_qsl(encoded, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _listify(tree)


# --- The stub ------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, Any]
    api_version: str
    idempotency_key: str
    problems: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"{self.method.upper()} {self.path}"


class StubStripe(HTTPClient):
    """Answers like current Stripe for the calls outlet makes; records and checks them.

    `card` decides what a payment does: "ok" (succeeds), "3ds" (requires_action until
    `authenticate()`), "decline" (a card_error on a one-time payment, an incomplete
    subscription whose PaymentIntent requires_payment_method)."""

    name = "stub"

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []
        self.objects: dict[str, dict[str, Any]] = {}
        self.card = "ok"
        self.down: set[str] = set()  # path prefixes answered with a 500, as when Stripe is down
        self._counter = 0

    # HTTPClient
    def request(self, method, url, headers, post_data=None, *, _usage=None):
        parts = urlsplit(url)
        encoded = parts.query if method in ("get", "delete") else (post_data or "")
        if isinstance(encoded, bytes):
            encoded = encoded.decode()
        params = form_decode(encoded)
        headers = dict(headers or {})
        recorded = Request(
            method=method,
            path=parts.path,
            params=params,
            api_version=headers.get("Stripe-Version", ""),
            idempotency_key=headers.get("Idempotency-Key", ""),
        )
        recorded.problems = self._check(recorded)
        self.requests.append(recorded)
        if any(parts.path.startswith(prefix) for prefix in self.down):
            body = {"error": {"type": "api_error", "message": "Stripe is having trouble."}}
            return json.dumps(body), 500, {"stripe-should-retry": "false"}
        status, body = self._answer(method, parts.path, params)
        return json.dumps(body), status, {"request-id": f"req_{self._counter}"}

    def request_stream(self, *args, **kwargs):  # pragma: no cover - outlet never streams
        raise NotImplementedError

    def close(self) -> None:
        pass

    # Checking
    def _check(self, request: Request) -> list[str]:
        problems = []
        if request.api_version != stripe.api_version:
            problems.append(
                f"{request.endpoint} sent API version {request.api_version!r}, "
                f"not the SDK's {stripe.api_version!r}"
            )
        endpoint = endpoint_for(request.method, request.path)
        if endpoint is None:
            return [*problems, f"{request.endpoint} is not an endpoint of the SDK"]
        if endpoint.params is None:
            if request.params:
                problems.append(f"{request.endpoint} takes no parameters")
        else:
            problems += check_params(request.params, endpoint.params)
        for path in request.params.get("expand") or []:
            problems += check_expand(path, endpoint.resource)
        # The SDK adds a random key (a UUID) to a POST that has none: that one does not count,
        # since a retry of the same operation by our code would get another.
        key = request.idempotency_key
        if (
            request.method == "post"
            and "{" not in endpoint.template
            and (not key or _UUID.match(key))
        ):
            problems.append(f"{request.endpoint} creates without an idempotency key of ours")
        return problems

    @property
    def problems(self) -> list[str]:
        return [problem for request in self.requests for problem in request.problems]

    def calls(self) -> list[str]:
        return [request.endpoint for request in self.requests]

    # Answering
    def _new_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_stub{self._counter:04d}"

    def _store(self, kind: str, prefix: str, **fields: Any) -> dict[str, Any]:
        obj = current_object(kind)
        obj.update(id=fields.pop("id", None) or self._new_id(prefix), livemode=False, **fields)
        self.objects[obj["id"]] = obj
        return obj

    def _expanded(self, obj: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        for path in expand:
            self._expand_path(obj, path.split("."))
        self._includable_strip(obj, (), {tuple(path.split(".")) for path in expand})
        return obj

    def _includable_strip(self, node: Any, at: tuple[str, ...], asked: set[tuple]) -> None:
        """Leave out what Stripe includes only on request, as Stripe does."""
        if isinstance(node, list):
            for item in node:
                self._includable_strip(item, at, asked)
            return
        if not isinstance(node, dict):
            return
        for name in _INCLUDABLE_BY_OBJECT.get(node.get("object", ""), ()):
            if (*at, name) not in asked:
                node.pop(name, None)
        for key, value in node.items():
            self._includable_strip(value, (*at, key), asked)

    def _expand_path(self, node: Any, segments: list[str]) -> None:
        if not segments or not isinstance(node, dict):
            return
        head, rest = segments[0], segments[1:]
        if head == "data" and isinstance(node.get("data"), list):
            for item in node["data"]:
                self._expand_path(item, rest)
            return
        value = node.get(head)
        if isinstance(value, str) and value in self.objects:
            node[head] = value = copy.deepcopy(self.objects[value])
        self._expand_path(value, rest)

    def _error(self, status: int, kind: str, message: str, **extra: Any) -> tuple[int, dict]:
        return status, {"error": {"type": kind, "message": message, **extra}}

    def authenticate(self, payment_intent_id: str) -> None:
        """The browser confirmed the payment (confirmCardPayment, 3-D Secure included):
        with a declining card it fails, otherwise it (and its invoice) is paid."""
        payment_intent = self.objects[payment_intent_id]
        if not payment_intent.get("payment_method"):
            # Deferred creation: the browser's confirmPayment brings the method.
            payment_intent["payment_method"] = self._store(
                "payment_method",
                "pm",
                customer=None,
                card={**current_object("payment_method")["card"], "brand": "visa", "last4": "4242"},
            )["id"]
        if self.card == "decline":
            payment_intent.update(
                status="requires_payment_method",
                last_payment_error={
                    "type": "card_error",
                    "code": "card_declined",
                    "message": "Your card was declined.",
                },
            )
            return
        payment_intent.update(
            status="succeeded",
            amount_received=payment_intent["amount"],
            latest_charge=self._charge(payment_intent),
        )
        for obj in list(self.objects.values()):
            if (
                obj.get("object") == "invoice_payment"
                and obj["payment"].get("payment_intent") == payment_intent_id
            ):
                obj.update(status="paid", amount_paid=obj["amount_requested"])
                invoice = self.objects[obj["invoice"]]
                invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
                details = invoice["parent"]["subscription_details"]
                self.objects[details["subscription"]]["status"] = "active"

    def _charge(self, payment_intent: dict[str, Any]) -> str:
        charge = self._store(
            "charge",
            "ch",
            amount=payment_intent["amount"],
            amount_captured=payment_intent["amount"],
            amount_refunded=0,
            refunded=False,
            currency=payment_intent["currency"],
            customer=payment_intent["customer"],
            payment_intent=payment_intent["id"],
            status="succeeded",
            paid=True,
        )
        return charge["id"]

    def _payment_intent(
        self, *, amount: int, currency: str, customer: str, confirm: bool = True, **fields: Any
    ):
        status = {"ok": "succeeded", "3ds": "requires_action"}.get(
            self.card, "requires_payment_method"
        )
        if not confirm:  # created for the browser to confirm: nothing tried yet
            status = "requires_payment_method"
        payment_intent = self._store(
            "payment_intent",
            "pi",
            amount=amount,
            amount_received=amount if status == "succeeded" else 0,
            currency=currency,
            customer=customer,
            status=status,
            latest_charge=None,
            **fields,
        )
        payment_intent["client_secret"] = f"{payment_intent['id']}_secret_stub"
        if status == "succeeded":
            payment_intent["latest_charge"] = self._charge(payment_intent)
        if status == "requires_payment_method" and confirm:
            payment_intent["last_payment_error"] = {
                "type": "card_error",
                "code": "card_declined",
                "message": "Your card was declined.",
            }
        return payment_intent

    def _answer(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, Any]:
        segments = path.strip("/").split("/")[1:]  # without "v1"
        resource, object_id = segments[0], segments[1] if len(segments) > 1 else ""
        expand = params.get("expand") or []
        if object_id and object_id not in self.objects and resource != "plans":
            return self._error(
                404,
                "invalid_request_error",
                f"No such object: {object_id}",
                code="resource_missing",
            )
        existing = self.objects.get(object_id)

        if resource == "events" and method == "get" and not object_id:
            # A restore's replay lists them (stripe_gateway.events_list); none in the stub.
            return 200, {"object": "list", "data": [], "has_more": False, "url": "/v1/events"}
        if resource == "customers" and not object_id:
            return 200, self._store(
                "customer", "cus", email=params.get("email"), name=params.get("name")
            )
        if resource == "customers" and method == "post":
            for name in ("email", "name"):
                if name in params:  # "" clears it, as Stripe does
                    existing[name] = params[name] or None
            existing["invoice_settings"] = {
                **(existing.get("invoice_settings") or {}),
                **params.get("invoice_settings", {}),
            }
            return 200, existing
        if resource == "setup_intents" and not object_id:
            setup_intent = self._store(
                "setup_intent",
                "seti",
                customer=params["customer"],
                status="requires_payment_method",
                usage=params.get("usage", "off_session"),
                payment_method=None,
            )
            setup_intent["client_secret"] = f"{setup_intent['id']}_secret_stub"
            return 200, setup_intent
        if resource == "setup_intents":
            # The browser confirmed it with a card (confirmCardSetup).
            payment_method = self._store(
                "payment_method",
                "pm",
                customer=existing["customer"],
                card={**current_object("payment_method")["card"], "brand": "visa", "last4": "4242"},
            )
            existing.update(status="succeeded", payment_method=payment_method["id"])
            return 200, self._expanded(existing, expand)
        if resource == "products" and not object_id:
            product = {"id": params["id"], "object": "product", "name": params["name"]}
            self.objects[product["id"]] = product
            return 200, product
        if resource == "payment_intents" and path.endswith("/cancel"):
            if existing["status"] not in (
                "requires_payment_method",
                "requires_confirmation",
                "requires_action",
            ):
                return self._error(
                    400,
                    "invalid_request_error",
                    "You cannot cancel this PaymentIntent because it has a status of "
                    f"{existing['status']}.",
                    code="payment_intent_unexpected_state",
                )
            existing.update(
                status="canceled", cancellation_reason=params.get("cancellation_reason")
            )
            return 200, self._expanded(existing, expand)
        if resource == "payment_intents" and not object_id and not params.get("confirm"):
            # Deferred intent creation: nothing is tried until the browser confirms.
            payment_intent = self._payment_intent(
                amount=int(params["amount"]),
                currency=params["currency"],
                customer=params["customer"],
                confirm=False,
                metadata=params.get("metadata") or {},
                payment_method=None,
            )
            return 200, self._expanded(payment_intent, expand)
        if resource == "payment_intents" and not object_id:
            if self.card == "decline":
                return self._error(
                    402, "card_error", "Your card was declined.", code="card_declined"
                )
            metadata = params.get("metadata") or {}
            payment_intent = self._payment_intent(
                amount=int(params["amount"]),
                currency=params["currency"],
                customer=params["customer"],
                metadata=metadata,
                payment_method=params.get("payment_method"),
            )
            return 200, self._expanded(payment_intent, expand)
        if resource == "plans" and not object_id:
            plan = self._store(
                "plan",
                "plan",
                id=params["id"],
                amount=int(params["amount"]),
                currency=params["currency"],
                interval=params["interval"],
                product="prod_stub",
            )
            return 200, plan
        if resource == "plans":
            if existing is None:
                return self._error(404, "invalid_request_error", f"No such plan: '{object_id}'")
            return 200, existing
        if resource == "subscriptions" and not object_id and method == "get":
            # Stripe leaves ended subscriptions out unless asked for status=all.
            wanted = params.get("status")
            listed = [
                obj
                for obj in self.objects.values()
                if obj.get("object") == "subscription"
                and (
                    wanted == "all"
                    or obj["status"] == wanted
                    or (not wanted and obj["status"] not in ("canceled", "incomplete_expired"))
                )
            ]
            return 200, self._expanded(self._page(listed, params, path), expand)
        if resource == "invoices" and not object_id and method == "get":
            listed = [
                self._with_payments(obj)
                for obj in self.objects.values()
                if obj.get("object") == "invoice"
                and (
                    not params.get("subscription")
                    or obj["parent"]["subscription_details"]["subscription"]
                    == params["subscription"]
                )
                and (not params.get("status") or obj["status"] == params["status"])
            ]
            return 200, self._expanded(self._page(listed, params, path), expand)
        if resource == "charges" and not object_id and method == "get":
            listed = [
                obj
                for obj in self.objects.values()
                if obj.get("object") == "charge"
                and (not params.get("customer") or obj["customer"] == params["customer"])
            ]
            return 200, self._expanded(self._page(listed, params, path), expand)
        if resource == "subscriptions" and not object_id:
            return 200, self._expanded(self._subscription(params), expand)
        if resource == "subscriptions" and method == "delete":
            existing.update(status="canceled", canceled_at=1_700_000_000)
            existing["cancellation_details"] = {
                "comment": None,
                "feedback": None,
                "reason": "cancellation_requested",
            }
            return 200, existing
        if resource == "subscriptions" and method == "post":
            for item in params.get("items") or []:
                if "price_data" in item:  # an inline price: a plan-like record of it
                    data = item["price_data"]
                    plan = {
                        "id": self._new_id("price"),
                        "amount": int(data["unit_amount"]),
                        "currency": data["currency"],
                        "interval": data["recurring"]["interval"],
                        "product": data["product"],
                    }
                else:
                    plan = self.objects[item["plan"]]
                existing["items"]["data"][0].update(plan=plan, price=self._price(plan))
            if "default_payment_method" in params:
                existing["default_payment_method"] = params["default_payment_method"]
            return 200, self._expanded(existing, expand)
        if resource == "invoice_payments":
            # Filtered by invoice, or by the payment (a PaymentIntent), as Stripe does.
            by_payment = (params.get("payment") or {}).get("payment_intent")
            payments = [
                obj
                for obj in self.objects.values()
                if obj.get("object") == "invoice_payment"
                and (
                    obj["payment"].get("payment_intent") == by_payment
                    if by_payment
                    else obj["invoice"] == params.get("invoice")
                )
            ][: int(params.get("limit") or 10)]
            listing = {
                "object": "list",
                "data": payments,
                "has_more": False,
                "url": "/v1/invoice_payments",
            }
            return 200, self._expanded(listing, expand)
        if resource == "refunds":
            payment_intent = self.objects[params["payment_intent"]]
            refund = self._store(
                "refund",
                "re",
                amount=payment_intent["amount"],
                currency=payment_intent["currency"],
                payment_intent=payment_intent["id"],
                charge=payment_intent["latest_charge"],
                status="succeeded",
            )
            return 200, refund
        if existing is not None and method == "get":
            return 200, self._expanded(existing, expand)
        return self._error(
            400, "invalid_request_error", f"The stub does not answer {method} {path}"
        )

    def _page(self, listed: list[dict[str, Any]], params: dict[str, Any], url: str) -> dict:
        """One page of a list, as Stripe pages it: `limit` items after `starting_after`."""
        start = 0
        if params.get("starting_after"):
            ids = [obj["id"] for obj in listed]
            start = ids.index(params["starting_after"]) + 1
        limit = int(params.get("limit") or 10)
        page = listed[start : start + limit]
        return {"object": "list", "data": page, "has_more": start + limit < len(listed), "url": url}

    def _with_payments(self, invoice: dict[str, Any]) -> dict[str, Any]:
        """The invoice with its InvoicePayments listed (stripped again unless asked for)."""
        payments = [
            obj
            for obj in self.objects.values()
            if obj.get("object") == "invoice_payment" and obj["invoice"] == invoice["id"]
        ]
        listing = {
            "object": "list",
            "data": payments,
            "has_more": False,
            "url": "/v1/invoice_payments",
        }
        return {**invoice, "payments": listing}

    def existing_subscription(
        self,
        *,
        email: str,
        amount: int,
        interval: str = "month",
        interval_count: int = 1,
        currency: str = "usd",
        status: str = "active",
        paid_invoices: int = 1,
    ) -> dict[str, Any]:
        """A subscription another system made in the account: its customer's card is the
        invoice default, it pays a Price (not a Plan), and each paid invoice has its
        PaymentIntent and charge, as current Stripe keeps them."""
        payment_method = self._store(
            "payment_method",
            "pm",
            card={
                **current_object("payment_method")["card"],
                "brand": "mastercard",
                "last4": "4444",
            },
        )
        customer = self._store("customer", "cus", email=email, name="Old Donor")
        customer["invoice_settings"]["default_payment_method"] = payment_method["id"]
        price = current_object("price")
        price.update(
            id=self._new_id("price"),
            unit_amount=amount,
            unit_amount_decimal=str(amount),
            currency=currency,
            product="prod_oldsystem",
            recurring={
                **price["recurring"],
                "interval": interval,
                "interval_count": interval_count,
            },
        )
        self.objects[price["id"]] = price
        subscription = self._store(
            "subscription",
            "sub",
            customer=customer["id"],
            currency=currency,
            status=status,
            metadata={"source": "old-system"},
            default_payment_method=None,
            latest_invoice=None,
        )
        item = subscription["items"]["data"][0]
        item.update(price=price, subscription=subscription["id"], quantity=1)
        for number in range(paid_invoices):
            self.paid_invoice(subscription, paid_at=1_700_000_000 + number * 2_600_000)
        return subscription

    def paid_invoice(self, subscription: dict[str, Any], *, paid_at: int) -> dict[str, Any]:
        price = subscription["items"]["data"][0]["price"]
        amount, currency = price["unit_amount"], price["currency"]
        payment_intent = self._payment_intent(
            amount=amount, currency=currency, customer=subscription["customer"], metadata={}
        )
        invoice = self._store(
            "invoice",
            "in",
            customer=subscription["customer"],
            amount_due=amount,
            amount_paid=amount,
            amount_remaining=0,
            currency=currency,
            status="paid",
            billing_reason="subscription_cycle",
            created=paid_at - 3600,
            status_transitions={"finalized_at": paid_at - 3600, "paid_at": paid_at},
            parent={
                "quote_details": None,
                "type": "subscription_details",
                "subscription_details": {
                    "metadata": subscription["metadata"],
                    "subscription": subscription["id"],
                },
            },
        )
        invoice.pop("payments", None)
        self._store(
            "invoice_payment",
            "inpay",
            invoice=invoice["id"],
            amount_paid=amount,
            amount_requested=amount,
            currency=currency,
            is_default=True,
            payment={"type": "payment_intent", "payment_intent": payment_intent["id"]},
            status="paid",
        )
        subscription["latest_invoice"] = invoice["id"]
        return invoice

    def _price(self, plan: dict[str, Any]) -> dict[str, Any]:
        price = current_object("price")
        price.update(
            id=plan["id"],
            unit_amount=plan["amount"],
            currency=plan["currency"],
            recurring={
                **(price.get("recurring") or {}),
                "interval": plan["interval"],
                "interval_count": 1,
            },
        )
        return price

    def _subscription(self, params: dict[str, Any]) -> dict[str, Any]:
        item_params = params["items"][0]
        if "price_data" in item_params:  # an inline price: a plan-like record of it
            data = item_params["price_data"]
            plan = {
                "id": self._new_id("price"),
                "amount": int(data["unit_amount"]),
                "currency": data["currency"],
                "interval": data["recurring"]["interval"],
                "product": data["product"],
            }
        else:
            plan = self.objects[item_params["plan"]]
        customer = params["customer"]
        subscription = self._store(
            "subscription",
            "sub",
            customer=customer,
            metadata=params.get("metadata") or {},
            currency=plan["currency"],
            status="incomplete",
            default_payment_method=params.get("default_payment_method"),
        )
        item = subscription["items"]["data"][0]
        item.update(plan=plan, price=self._price(plan), subscription=subscription["id"], quantity=1)
        # default_incomplete: Stripe does not try the first payment; the browser confirms
        # it with the invoice's confirmation secret. Otherwise it charges the default card.
        payment_intent = self._payment_intent(
            amount=plan["amount"],
            currency=plan["currency"],
            customer=customer,
            confirm=params.get("payment_behavior") != "default_incomplete",
            metadata={},
            payment_method=None,
        )
        paid = payment_intent["status"] == "succeeded"
        invoice = self._store(
            "invoice",
            "in",
            customer=customer,
            amount_due=plan["amount"],
            amount_paid=plan["amount"] if paid else 0,
            amount_remaining=0 if paid else plan["amount"],
            currency=plan["currency"],
            status="paid" if paid else "open",
            billing_reason="subscription_create",
            parent={
                "quote_details": None,
                "type": "subscription_details",
                "subscription_details": {
                    "metadata": subscription["metadata"],
                    "subscription": subscription["id"],
                },
            },
            confirmation_secret={
                "client_secret": payment_intent["client_secret"],
                "type": "payment_intent",
            },
        )
        invoice.pop("payments", None)
        self._store(
            "invoice_payment",
            "inpay",
            invoice=invoice["id"],
            amount_paid=plan["amount"] if paid else None,
            amount_requested=plan["amount"],
            currency=plan["currency"],
            is_default=True,
            payment={"type": "payment_intent", "payment_intent": payment_intent["id"]},
            status="paid" if paid else "open",
        )
        subscription.update(status="active" if paid else "incomplete", latest_invoice=invoice["id"])
        return subscription
