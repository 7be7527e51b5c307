"""setup.cfg lists packages explicitly (methods/ installs as reidkit_methods): keep the list complete."""
import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_directory_is_listed_in_setup_cfg():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = {p.strip() for p in cfg["options"]["packages"].split() if p.strip()}
    found = set()
    for base, name in (("reidkit", "reidkit"), ("methods", "reidkit_methods")):
        for init in (ROOT / base).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / base)
            found.add(".".join([name, *rel.parts]))
    assert found - listed == set(), f"add to setup.cfg [options] packages: {sorted(found - listed)}"
    assert listed - found == set(), f"listed but missing: {sorted(listed - found)}"
