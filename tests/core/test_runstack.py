"""`make run PORT=…`: what the stack's processes are told about where the site is."""

from __future__ import annotations

from outlet.core.management.commands.runstack import child_environ


def test_links_in_emails_point_at_the_port_the_stack_runs_on():
    env = child_environ(port=8040, production=False, environ={"PATH": "/bin"})
    assert env["SITE_URL"] == "http://127.0.0.1:8040"
    assert env["PATH"] == "/bin"


def test_a_site_url_given_by_the_engineer_stands():
    given = {"SITE_URL": "https://news.example.org"}
    assert child_environ(port=8040, production=False, environ=given)["SITE_URL"] == (
        "https://news.example.org"
    )
    assert "SITE_URL" not in child_environ(port=8040, production=True, environ={})
