"""``moorage dns`` against a real server (SPEC sections 2, 12): an admin sets a provider
from a YAML file and sees it listed with its secret masked, sets it again with the mask
kept, deletes it; a bad file, an unknown kind and an operator each get one line and exit 1,
with nothing stored."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Server, unique

SECRET = "c2VjcmV0IHRzaWcga2V5IGZvciB0aGUgY2xp"


def test_dns_set_list_delete_and_refusals(server: Server, tmp_path: Path) -> None:
    admin, operator = server.admin.token, server.operator.token
    config = tmp_path / "bind.yaml"
    config.write_text(
        f"server: 127.0.0.1:53\nzone: example.test\nkey_name: cli\nkey_secret: {SECRET}\n"
    )
    name = unique("dns")
    made = server.cli("dns", "set", name, "--kind", "rfc2136", "--config", str(config), token=admin)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == f"{name}: rfc2136"
    listed = server.cli("dns", "list", token=admin)
    assert name in listed.stdout and SECRET not in listed.stdout and "**" in listed.stdout
    [item] = [
        p
        for p in json.loads(server.cli("dns", "list", "--json", token=admin).stdout)
        if p["name"] == name
    ]
    assert item["config"]["zone"] == "example.test" and item["config"]["key_secret"] != SECRET

    # The listed settings, secret masked, set back: the stored secret stays.
    config.write_text(json.dumps({**item["config"], "zone": "other.test"}))
    again = server.cli(
        "dns", "set", name, "--kind", "rfc2136", "--config", str(config), token=admin
    )
    assert again.returncode == 0, again.stderr

    masked = tmp_path / "masked.json"
    masked.write_text(json.dumps(item["config"]))  # the mask, under a name with no secret
    refusals = [
        (
            ("dns", "set", unique("dns"), "--kind", "rfc2136", "--config", str(masked)),
            admin,
            "mask",
        ),
        (("dns", "set", name, "--kind", "nope", "--config", str(config)), admin, "nope"),
        (("dns", "set", name, "--kind", "rfc2136", "--config", str(tmp_path / "x")), admin, "x"),
        (("dns", "set", unique("dns"), "--kind", "rfc2136", "--config", str(config)), operator, ""),
        (("dns", "delete", name), operator, ""),
        (("dns", "delete", unique("dns")), admin, ""),
    ]
    for args, token, named in refusals:
        r = server.cli(*args, token=token)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert named in r.stderr
    providers = json.loads(server.cli("dns", "list", "--json", token=admin).stdout)
    assert [p["config"]["zone"] for p in providers if p["name"] == name] == ["other.test"]

    gone = server.cli("dns", "delete", name, token=admin)
    assert gone.returncode == 0 and gone.stdout.strip() == "deleted", gone.stderr
    assert name not in server.cli("dns", "list", token=admin).stdout
