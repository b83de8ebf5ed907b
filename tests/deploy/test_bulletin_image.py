"""metrics runs ecc-bulletin (the Dockerfile's `bulletin` stage: ecc plus headless Chromium and CJK
fonts) so GET /bulletin?format=pdf|png works in production; every other service keeps the plain
image (issues 7, 8). Compose builds that stage for metrics, both overlays name the image with the
same registry and tag as ecc, and the metrics pod has the memory and the writable /tmp Chromium needs."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import OVERLAYS, by_kind
from tests.deploy.test_compose import compose_config
from tests.deploy.test_dockerfile import FINAL_STAGES, stages
from tests.deploy.test_kubernetes import pod_spec

MIB = {"Mi": 1, "Gi": 1024}


def mebibytes(quantity: str) -> int:
    for unit, factor in MIB.items():
        if quantity.endswith(unit):
            return int(quantity[: -len(unit)]) * factor
    raise AssertionError(f"unexpected quantity {quantity!r}")


def split_image(image: str) -> tuple[str, str, str]:
    """registry/path prefix, repository name, tag."""
    prefix, _, rest = image.rpartition("/")
    name, _, tag = rest.partition(":")
    return prefix, name, tag


def service_containers(docs: list[dict[str, Any]], generator) -> dict[str, dict[str, Any]]:
    deployments = {d["metadata"]["name"]: d for d in by_kind(docs, "Deployment")}
    out = {}
    for svc in generator.load_services():
        [container] = pod_spec(deployments[svc.deployment])["containers"]
        out[svc.name] = container
    return out


def test_only_metrics_declares_the_bulletin_image(generator):
    images = {svc.name: svc.image for svc in generator.load_services()}
    assert [name for name, image in images.items() if image == "bulletin"] == ["metrics"]
    assert set(images.values()) == {"ecc", "bulletin"}
    # Each image the generator knows is a final stage of the Dockerfile.
    assert {target for _, target in generator.IMAGES.values()} == set(FINAL_STAGES)
    assert {s.name for s in stages()} >= set(FINAL_STAGES)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_metrics_runs_ecc_bulletin_with_the_same_registry_and_tag(rendered, generator, overlay):
    containers = service_containers(rendered[overlay], generator)
    images = {name: split_image(c["image"]) for name, c in containers.items()}
    for name, (_, repository, tag) in images.items():
        assert repository == ("ecc-bulletin" if name == "metrics" else "ecc"), (overlay, name, repository)
        assert tag, (overlay, name, "no tag: the overlay's images: misses this image")
    # One release: both images from the same registry path and with the same tag.
    assert len({(prefix, tag) for prefix, _, tag in images.values()}) == 1, images


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_metrics_has_room_for_chromium_and_a_writable_tmp(rendered, generator, overlay):
    containers = service_containers(rendered[overlay], generator)
    deployments = {d["metadata"]["name"]: d for d in by_kind(rendered[overlay], "Deployment")}
    tmp_sizes = {}
    for name, container in containers.items():
        spec = pod_spec(deployments[f"ecc-{name}"])
        [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
        assert not mount.get("readOnly"), (overlay, name)
        tmp_sizes[name] = mebibytes(volume["emptyDir"]["sizeLimit"])
        # The bulletin image changes nothing of the restricted pod.
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert spec["securityContext"]["runAsNonRoot"] is True
    # Chromium's profile and (--disable-dev-shm-usage) its shared memory live in /tmp.
    assert tmp_sizes["metrics"] >= 256
    assert all(size == 64 for name, size in tmp_sizes.items() if name != "metrics"), tmp_sizes
    # Two renders at once (ECC_EXPORT_CONCURRENCY=2) peaked at ~510 MiB beside the service itself.
    resources = containers["metrics"]["resources"]
    assert mebibytes(resources["limits"]["memory"]) >= 1024
    assert mebibytes(resources["requests"]["memory"]) >= 512


def test_compose_builds_the_bulletin_stage_for_metrics_only():
    proc = compose_config({"ECC_IMAGE_TAG": "1.2.3"})
    assert proc.returncode == 0, proc.stderr
    services = yaml.safe_load(proc.stdout)["services"]
    built = {name: spec for name, spec in services.items() if "build" in spec}
    assert "metrics" in built and "jwt-init" in built and "intake" in built
    for name, spec in built.items():
        target = "bulletin" if name == "metrics" else "runtime"
        assert spec["build"]["target"] == target, name
        assert spec["image"] == ("ecc-bulletin:1.2.3" if name == "metrics" else "ecc:1.2.3"), name
        assert Path(spec["build"]["context"]).resolve() == Path(__file__).resolve().parents[2]
    metrics = services["metrics"]
    assert metrics["read_only"] is True and "/tmp" in {t.split(":")[0] for t in metrics["tmpfs"]}
    default = yaml.safe_load(compose_config().stdout)["services"]
    assert default["metrics"]["image"] == "ecc-bulletin:local" and default["intake"]["image"] == "ecc:local"


@pytest.mark.parametrize("entry, message", [
    ({"image": "chromium"}, "one of"),
    ({"image": ""}, "one of"),
    ({"tmp": "256"}, "a size such as"),
    ({"tmp": "0Mi"}, "a size such as"),
    ({"tmp": 256}, "a size such as"),
])
def test_services_yaml_refuses_an_unknown_image_or_tmp_size(generator, tmp_path: Path, entry, message):
    path = tmp_path / "services.yaml"
    path.write_text(yaml.safe_dump({"services": {"metrics": {"api": True, **entry}}}), encoding="utf-8")
    with pytest.raises(SystemExit, match=message):
        generator.load_services(path)
