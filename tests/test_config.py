from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qrtui.config import (
    ConfigError,
    RemoteNode,
    load_config,
    resolve_config_path,
    save_config,
)

GOOD = """
[client]
aet = "QRTUI"

[remotes.pacs]
aet = "ORTHANC"
host = "127.0.0.1"
port = 4343
retrieve = "get"

[remotes.modality]
aet = "CT1"
host = "ct1.example"

[stores.local]
aet = "QRTUI_STORE"
port = 11120
directory = "~/dicom-store"

[stores.dms]
aet = "DMS"
host = "10.0.0.5"
port = 2104
"""


def test_good_config_has_defaults(write_config):
    config = load_config(write_config(GOOD))
    pacs, modality = config.remotes
    assert pacs == RemoteNode("pacs", "ORTHANC", "127.0.0.1", 4343, "get")
    assert modality.port == 104 and modality.retrieve == "auto" and modality.timeout == 5.0
    local, dms = config.stores
    assert local.embedded and local.directory == Path("~/dicom-store").expanduser()
    assert not dms.embedded and dms.host == "10.0.0.5"
    assert config.remote("2") is modality and config.store("dms") is dms


def test_empty_file_is_valid_with_default_client(write_config):
    config = load_config(write_config(""))
    assert config.client.aet == "QRTUI" and config.remotes == () and config.stores == ()


def test_unknown_node_reference_names_the_known(write_config):
    config = load_config(write_config(GOOD))
    with pytest.raises(ConfigError, match=r"no remote node 'nope' \(known: pacs, modality\)"):
        config.remote("nope")
    with pytest.raises(ConfigError, match="no store node '3'"):
        config.store("3")


BAD = [
    (
        '[remotes.pacs]\naet = "A"\nhost = "h"\ntls_ca = "/ca.crt"',
        r"remotes\.pacs\.tls_ca: is only used with tls = true",
    ),
    (
        '[remotes.pacs]\naet = "A"\nhost = "h"\ntls = true\ntls_cert = "/c.crt"',
        r"remotes\.pacs\.tls_cert: tls_cert and tls_key go together",
    ),
    (
        '[stores.s]\naet = "S"\ndirectory = "/tmp/x"\ntls = true',
        r"stores\.s\.tls_cert: a store that listens with TLS needs",
    ),
    (
        '[stores.s]\naet = "S"\nhost = "h"\ntls = true',
        r"stores\.s\.tls: only an embedded store",
    ),
    (
        '[stores.s]\naet = "S"\ndirectory = "/tmp/x"\nallowed_aets = ["OK", "' + "X" * 17 + '"]',
        r"stores\.s\.allowed_aets: AE title .* is longer than 16",
    ),
    (
        '[stores.s]\naet = "S"\ndirectory = "/tmp/x"\nallowed_addresses = ["10.1.2.0/24", "pacs"]',
        r"stores\.s\.allowed_addresses: 'pacs' is not an IP address or network",
    ),
    (
        '[remotes.pacs]\naet = "A"\nhost = "h"\nretrieve_deadline = 0',
        r"remotes\.pacs\.retrieve_deadline: 0 must be between 1 and 86400",
    ),
    ("[remotes.pacs\naet='A'", r"TOML syntax error: .*line 1, column \d+"),
    (
        '[remotes.pacs]\naet = "A"\nhost = "h"\ncolour = "red"',
        r"remotes\.pacs\.colour: unknown key",
    ),
    (
        '[remotes.pacs]\naet = "A"\nhost = "h"\nport = "104"',
        r"remotes\.pacs\.port: must be an integer",
    ),
    (
        '[remotes.pacs]\naet = "A"\nhost = "h"\nport = true',
        r"remotes\.pacs\.port: must be an integer",
    ),
    (
        '[remotes.pacs]\naet = "A"\nhost = "h"\nport = 0',
        r"remotes\.pacs\.port: port 0 is outside 1-65535",
    ),
    ('[remotes.pacs]\naet = "A"\nhost = "h"\nport = 65536', r"port 65536 is outside 1-65535"),
    ('[remotes.pacs]\naet = ""\nhost = "h"', r"remotes\.pacs\.aet: AE title is empty"),
    ('[remotes.pacs]\naet = "   "\nhost = "h"', r"remotes\.pacs\.aet: AE title is empty"),
    ('[remotes.pacs]\naet = "ABCDEFGHIJKLMNOPQ"\nhost = "h"', r"longer than 16 characters"),
    ('[remotes.pacs]\naet = "A\\\\B"\nhost = "h"', r"remotes\.pacs\.aet: .* contains a backslash"),
    ('[remotes.pacs]\nhost = "h"', r"remotes\.pacs\.aet: is required"),
    ('[remotes.pacs]\naet = "A"', r"remotes\.pacs\.host: is required"),
    (
        '[remotes.pacs]\naet = "A"\nhost = "h"\nretrieve = "copy"',
        r"remotes\.pacs\.retrieve: .* \"move\" or \"get\"",
    ),
    ('[remotes.pacs]\naet = "A"\nhost = "h"\ntimeout = -1', r"remotes\.pacs\.timeout: timeout -1"),
    ('[remotes.pacs]\naet = "A"\nhost = "h"\nuse_modality_tag = "yes"', r"must be true or false"),
    ('[client]\naet = "ABCDEFGHIJKLMNOPQR"', r"client\.aet: AE title .* longer than 16"),
    ('[client]\nname = "x"', r"client\.name: unknown key"),
    ('[nodes.x]\naet = "A"', r"nodes: unknown table"),
    ("remotes = 3", r"remotes: must be tables like \[remotes\.NAME\]"),
    ('[remotes."my pacs"]\naet = "A"\nhost = "h"', r"remotes\.my pacs: names use"),
    ('[remotes.7]\naet = "A"\nhost = "h"', r"remotes\.7: names .* not only digits"),
    ('[stores.s]\naet = "S"', r"stores\.s: needs 'directory' \(embedded store\) or 'host'"),
    ('[stores.s]\naet = "S"\nhost = "h"\ndirectory = "/d"', r"stores\.s\.host: an embedded store"),
    (
        '[stores.s]\naet = "S"\nhost = "h"\nbind = "0.0.0.0"',
        r"stores\.s\.bind: only an embedded store",
    ),
    (
        '[stores.a]\naet = "S"\ndirectory = "/a"\n[stores.b]\naet = "S"\ndirectory = "/b"\nport = 2',
        r"stores\.b\.aet: AE title 'S' is already used by stores\.a",
    ),
    (
        '[stores.a]\naet = "A"\ndirectory = "/a"\n[stores.b]\naet = "B"\ndirectory = "/b"',
        r"stores\.b\.port: port 11112 is already used by stores\.a",
    ),
]


NODES = '[remotes.pacs]\naet = "A"\nhost = "h"\n[stores.local]\naet = "S"\ndirectory = "/s"\n'
PROFILE = '[profiles.night]\nremote = "pacs"\nstore = "local"\n'
BAD += [
    (NODES + PROFILE + 'groups = ["ct"]\nremote = "x"', r"TOML syntax error"),
    (
        NODES + '[profiles.night]\nremote = "ris"\nstore = "local"\ngroups = ["ct"]',
        r"profiles\.night\.remote: no remote 'ris' \(known: pacs\)",
    ),
    (
        NODES + '[profiles.night]\nremote = "pacs"\nstore = "dms"\ngroups = ["ct"]',
        r"profiles\.night\.store: no store 'dms' \(known: local\)",
    ),
    (NODES + PROFILE + 'groups = ["ct", "us"]', r"profiles\.night\.groups: unknown group 'us'"),
    (NODES + PROFILE + "groups = []", r"profiles\.night\.groups: name at least one group"),
    (NODES + PROFILE + 'groups = ["ct"]\nsr_only = true', r"profiles\.night\.sr_only: SR only"),
    (NODES + PROFILE + 'groups = ["ct"]\noverlap = "1w"', r"profiles\.night\.overlap: .* Nd"),
    (NODES + PROFILE + 'groups = ["ct"]\noverlap = 1', r"profiles\.night\.overlap: must be a"),
    (NODES + PROFILE + 'groups = ["ct"]\nexclude = ["a,b"]', r"exclude: term 'a,b' contains"),
    (NODES + PROFILE + 'groups = ["ct"]\nfrom = "1d"', r"profiles\.night\.from: unknown key"),
    (NODES + '[profiles.night]\nstore = "local"\ngroups = ["ct"]', r"night\.remote: is required"),
]


def test_a_profile_holds_a_query(write_config):
    config = load_config(
        write_config(
            NODES + PROFILE + 'groups = ["CT", "mg"]\nexclude = ["imported"]\noverlap = "36h"\n'
        )
    )
    night = config.profile("night")
    assert night.remote == "pacs" and night.store == "local"
    assert night.groups == ("ct", "mg") and night.exclude == ("imported",)
    assert night.overlap == "36h" and not night.sr_only and not night.dup
    with pytest.raises(ConfigError, match=r"no profile 'day' \(known: night\)"):
        config.profile("day")
    assert save_config(config).profiles == config.profiles


@pytest.mark.parametrize(("text", "pattern"), BAD, ids=[p for _, p in BAD])
def test_every_mistake_is_one_line_naming_file_node_and_key(write_config, text, pattern):
    path = write_config(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    assert __import__("re").search(pattern, message), message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "absent.toml")


def test_not_utf8(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes(b'[client]\naet = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_location_order(tmp_path, monkeypatch):
    assert resolve_config_path("a.toml", {"QRTUI_CONFIG": "b.toml"}) == Path("a.toml")
    assert resolve_config_path(None, {"QRTUI_CONFIG": "b.toml"}) == Path("b.toml")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert resolve_config_path(None, {}) == tmp_path / "qrtui" / "config.toml"


def test_save_round_trips_and_is_atomic(write_config, tmp_path):
    config = load_config(write_config(GOOD))
    target = tmp_path / "sub" / "saved.toml"
    saved = save_config(config, target)
    assert load_config(target) == saved
    assert saved.remotes == config.remotes and saved.stores == config.stores
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["saved.toml"]


def test_a_save_killed_halfway_leaves_the_old_file_whole(write_config):
    """SIGKILL after the new text is written and synced, just before the rename: the old
    file is still there, whole and valid (a writer that wrote in place would have cut it)."""
    path = write_config(GOOD)
    before = path.read_text()
    child = textwrap.dedent(f"""
        import os, sys, threading
        from pathlib import Path
        from qrtui.config import load_config, save_config
        config = load_config(Path({str(path)!r}))
        config = type(config)(config.path, config.client, config.remotes[:1], config.stores)
        def stop(*args):
            print("renaming", flush=True)
            threading.Event().wait()
        os.replace = stop
        save_config(config)
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "renaming\n"
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert path.read_text() == before
    assert len(load_config(path).remotes) > 1  # the old nodes, parsed


def test_save_refuses_invalid_config_and_keeps_the_old_file(write_config):
    path = write_config(GOOD)
    before = path.read_text()
    config = load_config(path)
    broken = type(config)(
        path, config.client, (*config.remotes, RemoteNode("bad", "X" * 17, "h")), config.stores
    )
    with pytest.raises(ConfigError, match=r"remotes\.bad\.aet: .*longer than 16"):
        save_config(broken)
    assert path.read_text() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.toml"]


def test_example_config_is_valid():
    example = Path(__file__).resolve().parents[1] / "config.example.toml"
    config = load_config(example)
    assert config.remotes and config.stores


COMMENTED = """# qrtui at the radiology department: ask IT before changing
[client]
aet = "QRTUI"   # registered on every PACS

# The main archive
[remotes.pacs]
aet = "ORTHANC"   # since 2025
host = "127.0.0.1"
port = 4343

# The CT scanner of room 2
[remotes.ct2]
aet = "CT2"
host = "10.0.0.2"

[stores.local]
aet = "QRTUI_STORE"
directory = "~/dicom-store"   # backed up nightly
"""


def _comment_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "#" in line]


def test_a_save_that_adds_or_keeps_tables_keeps_every_comment(write_config):
    from dataclasses import replace

    from qrtui.config import Profile, comments_a_save_drops

    path = write_config(COMMENTED)
    config = load_config(path)
    assert comments_a_save_drops(config) == 0
    save_config(config)
    assert path.read_text() == COMMENTED, "nothing changed, nothing rewritten"

    nightly = Profile("nightly", "pacs", "local", groups=("ct",), exclude=("imported",))
    added = replace(
        config,
        remotes=(*config.remotes, RemoteNode("ris", "RIS", "10.0.0.9")),
        profiles=(nightly,),
    )
    assert comments_a_save_drops(added) == 0
    save_config(added)
    text = path.read_text()
    assert text.startswith(COMMENTED) and _comment_lines(text) == _comment_lines(COMMENTED)
    assert load_config(path) == added
    assert not (path.parent / "config.toml.bak").exists()


def test_a_save_that_changes_a_commented_table_says_so_and_keeps_a_backup(write_config):
    from dataclasses import replace

    from qrtui.config import backup_path, comments_a_save_drops

    path = write_config(COMMENTED)
    config = load_config(path)
    pacs = replace(config.remote("pacs"), port=4444)
    changed = replace(config, remotes=(pacs, config.remote("ct2")))
    assert comments_a_save_drops(changed) == 1  # "# since 2025", inside the changed table
    save_config(changed)
    text = path.read_text()
    assert "since 2025" not in text and "port = 4444" in text
    kept = [c for c in _comment_lines(COMMENTED) if "since 2025" not in c]
    assert _comment_lines(text) == kept, "comments outside the changed table stay"
    assert backup_path(path).read_text() == COMMENTED
    assert load_config(path) == changed

    without_ct2 = replace(changed, remotes=(pacs,))
    assert comments_a_save_drops(without_ct2) == 0, "the comment above [remotes.ct2] stays"
    save_config(without_ct2)
    assert "[remotes.ct2]" not in path.read_text() and load_config(path) == without_ct2


def test_the_example_configuration_keeps_its_comments_when_a_profile_is_added(tmp_path):
    from dataclasses import replace

    from qrtui.config import Profile

    example = Path(__file__).resolve().parents[1] / "config.example.toml"
    path = tmp_path / "config.toml"
    path.write_text(example.read_text())
    config = load_config(path)
    profile = Profile("weekly", "pacs", "local", sr_only=True, overlap="12h")
    save_config(replace(config, profiles=(*config.profiles, profile)))
    assert _comment_lines(path.read_text()) == _comment_lines(example.read_text())
    assert load_config(path).profile("weekly") == profile
