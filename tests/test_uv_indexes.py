"""tools/uv_indexes.py: pip's configured indexes handed to uv by ``make venv``."""

import importlib.util
import subprocess
import sys

from helpers.paths import ROOT

spec = importlib.util.spec_from_file_location("uv_indexes", ROOT / "tools" / "uv_indexes.py")
uv_indexes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(uv_indexes)

LISTING = """global.cert='/etc/ssl/certs/ca-certificates.crt'
global.extra-index-url='file:///opt/a/simple file:///opt/b/simple'
global.find-links='/opt/wheels'
:env:.find-links='/srv/wheels'
:env:.default-timeout='180'
global.index-url='https://mirror.example/simple'
"""


def test_every_index_of_pip_config_becomes_a_uv_flag_and_the_environment_wins():
    settings = uv_indexes.pip_settings(LISTING)
    assert settings == {"extra-index-url": ["file:///opt/a/simple", "file:///opt/b/simple"],
                        "find-links": ["/srv/wheels"], "index-url": ["https://mirror.example/simple"]}
    assert uv_indexes.uv_flags(settings) == [
        "--index-url", "https://mirror.example/simple",
        "--extra-index-url", "file:///opt/a/simple", "--extra-index-url", "file:///opt/b/simple",
        "--find-links", "/srv/wheels", "--index-strategy", "unsafe-best-match"]


def test_no_configuration_leaves_uv_on_its_default_index():
    assert uv_indexes.uv_flags(uv_indexes.pip_settings("")) == ["--index-strategy", "unsafe-best-match"]
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "uv_indexes.py")], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[-2:] == ["--index-strategy", "unsafe-best-match"] and len(out) % 2 == 0
