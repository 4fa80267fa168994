"""localstripe keeps its objects in a file of the stack's own (under var/), not in the
/tmp/localstripe.pickle every localstripe on the machine shares: a fresh `make run` showed
other stacks' and test runs' subscriptions (and offered to adopt them)."""

import os
import pickle
import subprocess
import sys

import requests

from tests.conftest import free_port, wait_for_port


def test_localstripe_keeps_its_objects_in_the_file_it_is_given(tmp_path):
    store = tmp_path / "localstripe.pickle"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "outlet.core.localstripe_server", "--port", str(port)],
        env={**os.environ, "LOCALSTRIPE_STORE": str(store)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port)
        customer = requests.post(
            f"http://127.0.0.1:{port}/v1/customers",
            data={"email": "store@example.org"},
            auth=("sk_test_store", ""),
            timeout=10,
        ).json()
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=10)

    saved = pickle.loads(store.read_bytes())  # noqa: S301 (the file this test had written)
    assert any(customer["id"] in str(key) for key in saved)


def test_make_run_gives_localstripe_a_store_under_var(settings):
    from outlet.core.management.commands.runstack import child_environ

    env = child_environ(port=8000, production=False, environ={})

    assert env["LOCALSTRIPE_STORE"] == str(settings.VAR_DIR / "localstripe.pickle")
