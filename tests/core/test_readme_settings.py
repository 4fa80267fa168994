"""The README's configuration table is the deployer's list of knobs: every variable
the settings (outlet/settings/) read from the environment is named there."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READ = re.compile(
    r"""(?:\benv(?:\.\w+)?|\bread)\(\s*(?:env\.\w+,\s*)?["']([A-Z][A-Z0-9_]+)["']"""
    r"""|os\.environ(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]+)["']"""
)


def settings_variables() -> set[str]:
    text = "".join(path.read_text() for path in (ROOT / "outlet" / "settings").glob("*.py"))
    return {a or b for a, b in READ.findall(text)}


def test_settings_reads_variables_the_scan_can_see():
    names = settings_variables()
    assert {"SECRET_KEY", "DATABASE_URL", "EDGE_PURGE_URLS", "STRIPE_SECRET_KEY"} <= names


def test_every_environment_variable_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = sorted(name for name in settings_variables() if f"`{name}`" not in readme)
    assert not missing, f"outlet/settings/ reads these but README.md does not list them: {missing}"
