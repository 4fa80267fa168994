"""The admin's own tool pages (stripe_adopt, the subscriber import) look and read like the
admin's other forms: its form styles, breadcrumbs through the app, words in the catalogue."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

PAGES = ["admin:donations_gift_adopt", "admin:newsletters_subscriber_import"]


@pytest.mark.parametrize("name", PAGES)
def test_a_tool_page_is_an_admin_form_with_breadcrumbs_through_its_app(admin_client, name):
    page = admin_client.get(reverse(name)).content.decode()

    assert "admin/css/forms.css" in page
    assert '<fieldset class="module aligned">' in page
    app = "donations" if "donations" in name else "newsletters"
    assert f'<li><a href="{reverse("admin:app_list", args=[app])}">' in page
    # One item a line: the "›" after each needs the white space between them.
    assert "</li><li" not in page


def test_a_checkbox_label_ends_without_a_colon(admin_client):
    page = admin_client.get(reverse("admin:donations_gift_adopt")).content.decode()

    assert "write nothing:</label>" not in page
    assert "write nothing</label>" in page


def test_the_subscriber_import_form_speaks_through_the_catalogue():
    from django.utils.functional import Promise

    from outlet.newsletters.forms import ImportForm

    for field in ImportForm.base_fields.values():
        for text in (field.label, field.help_text, *field.error_messages.values()):
            assert text is None or text == "" or isinstance(text, Promise), text
