"""Packaging (issue #13 item 7): the hardened systemd unit passes `systemd-analyze verify` and
scores as well exposed as its hardening intends, its user comes from a real sysusers run, the
production configuration it points at is accepted by the binary, and `samtalerum --version`
names the build that /metrics reports. The Containerfile is not tested here (no container engine)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, server_binary

UNIT = REPO / "Packaging/systemd/samtalerum.service"
SYSUSERS = REPO / "Packaging/systemd/samtalerum.sysusers"
PRODUCTION_CONFIG = REPO / "Packaging/etc/samtalerum.yaml"
VERSION_SOURCE = REPO / "Sources/SamtalerumApp/Operations/BuildInfo.swift"


def systemd_analyze():
    path = shutil.which("systemd-analyze")
    if not path:
        pytest.fail("systemd-analyze missing: Scripts/install-test-deps installs Debian's systemd package")
    return path


@pytest.fixture(params=[("samtalerum.service", "serve"), ("samtalerum-relay.service", "relay")], ids=["serve", "relay"])
def staged_unit(tmp_path, request):
    """The unit as installed (the server's, and a relay node's), but starting the binary under
    test (verify checks ExecStart exists)."""
    name, command = request.param
    text = (UNIT.parent / name).read_text()
    assert f"ExecStart=/usr/local/bin/samtalerum {command} --config /etc/samtalerum/samtalerum.yaml" in text
    unit = tmp_path / name
    unit.write_text(text.replace("/usr/local/bin/samtalerum", str(server_binary())))
    return unit


def test_the_systemd_unit_is_hardened_and_passes_systemd_analyze_verify(staged_unit):
    settings = dict(line.split("=", 1) for line in staged_unit.read_text().splitlines()
                    if "=" in line and not line.startswith("#"))
    assert settings["User"] == "samtalerum" and settings["Group"] == "samtalerum"
    assert settings["ProtectSystem"] == "strict"
    assert int(settings["LimitNOFILE"]) >= 65536
    assert settings["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"
    assert settings["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE"
    assert settings["NoNewPrivileges"] == "yes"
    assert settings["StateDirectory"] == "samtalerum"

    # verify exits 0 even for an unknown directive, so any output at all is a failure.
    verified = subprocess.run([systemd_analyze(), "verify", str(staged_unit)], capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0 and not (verified.stdout + verified.stderr).strip(), verified.stdout + verified.stderr

    # systemd's own exposure score (0 = locked down, 10 = none): under 2, "OK".
    security = subprocess.run([systemd_analyze(), "security", "--offline=yes", "--threshold=20", str(staged_unit)],
                              capture_output=True, text=True, timeout=60)
    assert security.returncode == 0, security.stdout[-2000:] + security.stderr


def test_systemd_analyze_verify_would_catch_a_broken_unit(staged_unit):
    """The check above is not vacuous: a misspelt hardening directive is reported."""
    broken = staged_unit.with_name("broken.service")
    broken.write_text(staged_unit.read_text().replace("ProtectSystem=strict", "ProtectSystm=strict"))
    verified = subprocess.run([systemd_analyze(), "verify", str(broken)], capture_output=True, text=True, timeout=60)
    assert "ProtectSystm" in verified.stdout + verified.stderr


def test_the_service_user_is_created_by_systemd_sysusers(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    created = subprocess.run(["systemd-sysusers", f"--root={root}", str(SYSUSERS)], capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    entry = next(line for line in (root / "etc/passwd").read_text().splitlines() if line.startswith("samtalerum:"))
    assert entry.endswith(":/var/lib/samtalerum:/usr/sbin/nologin"), entry


def test_the_production_configuration_is_accepted_by_every_command(tmp_path):
    result = subprocess.run([str(server_binary()), "token", "issue", "--config", str(PRODUCTION_CONFIG),
                             "--data-dir", str(tmp_path / "data"), "--role", "ops", "--subject", "ops-1", "--ttl", "60"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().count(".") == 2  # a JWT


def test_version_names_the_build(tmp_path):
    result = subprocess.run([str(server_binary()), "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    declared = re.search(r'version = "([^"]+)"', VERSION_SOURCE.read_text()).group(1)
    assert result.stdout.strip() == declared
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?", declared)
