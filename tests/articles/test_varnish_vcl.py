"""deploy/varnish/outlet.vcl itself, run by varnishtest against scripted origins
(tests/articles/varnish/*.vtc); skipped where Varnish is not installed."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VCL = ROOT / "deploy" / "varnish" / "outlet.vcl"
CASES = sorted((Path(__file__).parent / "varnish").glob("*.vtc"))


def vcl_without_backend(directory: Path) -> Path:
    """The deployed VCL minus its version line and origin backend: the test's own server
    (varnishtest's -vcl+backend) takes the origin's place. Readable by all, as Varnish's
    compiler runs as its own user."""
    text = VCL.read_text()
    text = re.sub(r"^vcl 4\.1;\n", "", text, flags=re.M)
    text, count = re.subn(r"^backend origin \{.*?^\}\n", "", text, flags=re.M | re.S)
    assert count == 1, "outlet.vcl should declare one `backend origin`"
    path = directory / "outlet-under-test.vcl"
    path.write_text(text)
    path.chmod(0o644)
    return path


@pytest.mark.skipif(not shutil.which("varnishtest"), reason="varnishtest is not installed")
@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_outlet_vcl_behaves_as_the_case_says(case):
    with tempfile.TemporaryDirectory() as directory:
        Path(directory).chmod(0o755)
        vcl = vcl_without_backend(Path(directory))
        result = subprocess.run(
            ["varnishtest", f"-Doutlet_vcl={vcl}", str(case)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    failures = [line for line in result.stdout.splitlines() if line.startswith(("----", "#"))]
    assert result.returncode == 0, "\n".join(failures[-20:])
