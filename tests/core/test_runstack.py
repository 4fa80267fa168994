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


def test_make_run_takes_every_port_it_opens_as_an_argument():
    import subprocess

    from django.conf import settings

    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-n",
            "run",
            "PORT=8170",
            "STRIPE_PORT=8171",
            "MAIL_PORT=8172",
        ],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )

    command = next(line for line in result.stdout.splitlines() if "runstack" in line)
    assert "--port 8170" in command
    assert "STRIPE_API_BASE=http://127.0.0.1:8171" in command
    assert "EMAIL_URL=smtp://127.0.0.1:8172" in command


def test_a_busy_port_names_the_make_argument_that_moves_it(settings):
    import socket

    import pytest
    from django.core.management.base import CommandError

    from outlet.core.management.commands.runstack import Command

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        settings.STRIPE_API_BASE = f"http://127.0.0.1:{taken}"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "smtp.example.org", 587

        with pytest.raises(CommandError) as refused:
            Command()._check_ports(0, production=False)

    assert f"make run STRIPE_PORT={taken + 1}" in str(refused.value)
