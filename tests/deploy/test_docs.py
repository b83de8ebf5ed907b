"""docs/deploy.md covers what issue 7 asks, and names every Secret key the manifests use."""
from __future__ import annotations

import yaml

from tests.deploy.conftest import DEPLOY, ROOT

DOC = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")


def test_deploy_guide_sections():
    for heading in ("From an empty host", "From an empty cluster", "Secrets", "Sizing", "Backup and restore",
                    "Upgrades", "Adding a service"):
        assert f"{heading}" in DOC, heading
    for scale in ("county court", "province", "whole country"):
        assert scale in DOC
    for words in ("mongodump", "mongorestore", "--reset-offsets", "KafkaMirrorMaker2", "Consumers first",
                  "partitions up front"):
        assert words in DOC, words


def test_every_secret_key_is_documented():
    for secret in yaml.safe_load_all((DEPLOY / "k8s" / "overlays" / "prod" / "secrets.example.yaml").read_text()):
        assert f"`{secret['metadata']['name']}`" in DOC
        for key in secret["stringData"]:
            assert f"`{key}`" in DOC, key
