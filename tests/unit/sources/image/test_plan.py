"""The image kind's pure plan: a workload in, the container spec out. No engine involved."""

from __future__ import annotations

from pathlib import Path

from moorage.plugins.spec import VolumeMount, WorkloadView
from moorage.runtime.engine import BindMount, ContainerSpec, PortBinding
from moorage.sources.image import plan
from moorage.sources.image.config import ImageConfig

WORKLOAD = WorkloadView(
    id="wl_1",
    name="web",
    kind="image",
    project="shop",
    stage="prod",
    config={},
    env={"A": "1"},
    volumes=(
        VolumeMount("data", "stage", Path("/v/shop/prod/data"), "/data", False),
        VolumeMount("ro", "project", Path("/v/shop/_shared/c"), "/c", True),
    ),
)


def test_container_spec_carries_labels_ports_mounts_and_env() -> None:
    config = ImageConfig.model_validate(
        {
            "image": "a/b:1",
            "command": ["run"],
            "init": False,
            "stop_timeout": 3,
            "ports": [{"container": 8080, "host": 18080}, {"container": 53, "protocol": "udp"}],
        }
    )
    spec = plan.container_spec(
        WORKLOAD,
        config,
        deployment_id="dp_0123456789abcdef",
        image="a/b:1",
        publish_addr="127.0.0.1",
        extra_labels={"moorage.test": "run"},
    )
    assert spec.name == "moorage_shop_prod_web_89abcdef"
    assert spec.network == "moorage_shop_prod" and spec.aliases == ("web",)
    assert spec.labels == {
        "moorage.test": "run",
        "moorage.workload": "wl_1",
        "moorage.project": "shop",
        "moorage.stage": "prod",
        "moorage.deployment": "dp_0123456789abcdef",
    }
    assert [(p.container, p.host, p.protocol, p.host_ip) for p in spec.ports] == [
        (8080, 18080, "tcp", "127.0.0.1"),
        (53, None, "udp", "127.0.0.1"),
    ]
    assert [(m.source, m.target, m.read_only) for m in spec.mounts] == [
        ("/v/shop/prod/data", "/data", False),
        ("/v/shop/_shared/c", "/c", True),
    ]
    assert spec.env == {"A": "1"} and spec.command == ("run",)
    assert spec.init is False and spec.stop_timeout == 3
    assert plan.fixed_host_ports(spec) == {(18080, "tcp")}


def test_extra_labels_cannot_override_moorage_labels() -> None:
    config = ImageConfig.model_validate({"image": "a/b:1"})
    spec = plan.container_spec(
        WORKLOAD,
        config,
        deployment_id="dp_1",
        image="a/b:1",
        publish_addr="127.0.0.1",
        extra_labels={"moorage.workload": "forged"},
    )
    assert spec.labels["moorage.workload"] == "wl_1"


def test_image_to_run_prefers_the_recorded_image_id() -> None:
    config = ImageConfig.model_validate({"image": "a/b:1"})
    assert plan.image_to_run(config) == "a/b:1"
    assert plan.image_to_run(config, {"image_id": "sha256:abc"}) == "sha256:abc"


def test_a_candidate_keeps_the_spec_but_takes_no_host_port_and_no_alias() -> None:
    spec = ContainerSpec(
        name="moorage_shop_prod_web_89abcdef",
        image="a/b:1",
        labels={"moorage.workload": "wl_1", "moorage.deployment": "dp_1"},
        network="moorage_shop_prod",
        aliases=("web",),
        env={"A": "1"},
        ports=(PortBinding(8080, 18080), PortBinding(53, None, "udp")),
        mounts=(BindMount("/v/data", "/data"),),
    )
    candidate = plan.candidate_spec(spec)
    assert candidate.name == "moorage_shop_prod_web_89abcdef_candidate"
    assert candidate.labels == {**spec.labels, "moorage.candidate": "true"}
    assert [(p.container, p.host, p.protocol, p.host_ip) for p in candidate.ports] == [
        (8080, None, "tcp", "127.0.0.1"),
        (53, None, "udp", "127.0.0.1"),
    ]
    assert plan.fixed_host_ports(candidate) == set()
    assert candidate.aliases == () and candidate.restart_policy == "no"
    assert (candidate.image, candidate.env, candidate.mounts, candidate.network) == (
        spec.image,
        spec.env,
        spec.mounts,
        spec.network,
    )
