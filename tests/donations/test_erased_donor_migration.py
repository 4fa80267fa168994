"""Migration 0008: donors erased under the old scheme lose their placeholder address."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("donations", "0007_donor_search_trigram")]
AFTER = [("donations", "0008_donor_email_null_when_erased")]


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor.loader.project_state(target).apps


@pytest.mark.django_db(transaction=True)
def test_placeholder_addresses_of_erased_donors_become_null_and_back():
    old_apps = migrate(BEFORE)
    Donor = old_apps.get_model("donations", "Donor")
    erased = Donor.objects.create(email="erased-0@erased.invalid", name="")
    Donor.objects.filter(pk=erased.pk).update(email=f"erased-{erased.pk}@erased.invalid")
    # Someone who typed another donor's would-be placeholder into the donate form keeps it.
    typed = Donor.objects.create(email="erased-999@erased.invalid", name="")
    kept = Donor.objects.create(email="ada@example.com", name="Ada")

    Donor = migrate(AFTER).get_model("donations", "Donor")
    emails = dict(Donor.objects.values_list("pk", "email"))
    assert emails == {erased.pk: None, typed.pk: typed.email, kept.pk: "ada@example.com"}

    Donor = migrate(BEFORE).get_model("donations", "Donor")
    assert Donor.objects.get(pk=erased.pk).email == f"erased-{erased.pk}@erased.invalid"

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
