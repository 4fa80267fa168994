"""Staff who may only view are refused every write, custom admin views included.

test_admin_permissions walks the admin as staff with no permissions at all, so a view
that checks "may view" before "may change" passes it even without the second check.
Here the same walk POSTs as staff who may view everything: nothing may change.
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission, User

from tests.core.test_admin_permissions import _rows, admin_addresses

pytestmark = pytest.mark.django_db

#: Pages whose POST writes nothing (they only read, or sign the user out or in).
READS_ONLY = {"login", "logout", "jsi18n", "view_on_site", "password_change"}
#: Counts the report pages compute and keep (derived from deliveries, rebuilt at will).
DERIVED = {"newsletters.IssueStats"}


def _snapshot() -> dict[str, list[tuple]]:
    return {
        model._meta.label: sorted(map(repr, model.objects.values_list()))
        for model in apps.get_models()
        if model._meta.app_label not in ("sessions", "admin") and model._meta.label not in DERIVED
    }


def test_staff_who_may_only_view_change_nothing_by_posting_to_any_admin_page(client):
    viewer = User.objects.create_user("viewer", "v@outlet.test", "pw", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    client.force_login(viewer)
    rows = _rows()
    before = _snapshot()

    changed = []
    for address in admin_addresses(rows):
        if address.name in READS_ONLY:
            continue
        response = client.post(address.url, {"confirmed": "yes", "post": "yes"})
        after = _snapshot()
        if after != before:
            tables = [label for label in after if after[label] != before[label]]
            changed.append(f"POST {address.url} ({address.name}): {response.status_code} {tables}")
            before = after
    assert changed == [], "\n".join(changed)
