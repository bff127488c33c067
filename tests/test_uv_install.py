"""tools/uv_install.py: ``make venv`` installs the lock with uv from the indexes pip is configured with."""

import importlib.util

from helpers.paths import ROOT

spec = importlib.util.spec_from_file_location("uv_install", ROOT / "tools" / "uv_install.py")
uv_install = importlib.util.module_from_spec(spec)
spec.loader.exec_module(uv_install)

# ``pip config list`` prints each value as Python's repr: a list written one per line in pip.conf keeps its newlines
LISTING = r"""global.cert='/etc/ssl/certs/ca-certificates.crt'
global.extra-index-url='\nfile:///opt/a/simple\nhttps://x.example/simple?token=a&b=c'
global.find-links='/opt/wheels'
install.find-links='/opt/install-wheels'
download.index-url='https://ignored.example/simple'
:env:.find-links='/srv/wheels /srv/more'
:env:.default-timeout='180'
global.index-url='https://mirror.example/simple'
"""


def test_pip_config_becomes_uv_arguments_in_pips_precedence():
    settings = uv_install.pip_settings(LISTING)
    assert settings == {"cert": ["/etc/ssl/certs/ca-certificates.crt"],
                        "extra-index-url": ["file:///opt/a/simple", "https://x.example/simple?token=a&b=c"],
                        "find-links": ["/srv/wheels", "/srv/more"],          # the environment over install, global
                        "index-url": ["https://mirror.example/simple"]}      # download's section is not install's
    assert uv_install.uv_args(settings) == [
        "--index-url", "https://mirror.example/simple",
        "--extra-index-url", "file:///opt/a/simple", "--extra-index-url", "https://x.example/simple?token=a&b=c",
        "--find-links", "/srv/wheels", "--find-links", "/srv/more", "--index-strategy", "unsafe-best-match"]


def test_no_configuration_leaves_uv_on_its_default_index_and_no_index_is_passed_on():
    assert uv_install.uv_args(uv_install.pip_settings("")) == ["--index-strategy", "unsafe-best-match"]
    assert "--no-index" in uv_install.uv_args(uv_install.pip_settings(":env:.no-index='true'\n"))
    assert "--no-index" not in uv_install.uv_args(uv_install.pip_settings("global.no-index='false'\n"))
    assert "--no-index" not in uv_install.uv_args(uv_install.pip_settings(":env:.no-index=''\n"))   # PIP_NO_INDEX=
    assert uv_install.uv_args(uv_install.pip_settings("global.constraint='/etc/c.txt'\n"))[:2] == ["--constraint",
                                                                                                  "/etc/c.txt"]
