# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which Gluetun containers the gluetun role's docker_container task converges: a container is left out only when
every option the task gives is already what its inspect shows; each kind of drift sends it back."""

from __future__ import annotations

import copy
import json

import pytest

from ansible_collections.acestream.orchestrator.plugins.module_utils import _gluetun_in_place as in_place
from ansible_collections.acestream.orchestrator.plugins.module_utils import _gluetun_stack as gluetun_stack
from ansible_collections.acestream.orchestrator.plugins.module_utils import _stack_reshape as reshape
from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import build_plan

HEALTHCHECK = {"test": ["CMD", "/gluetun-entrypoint", "healthcheck"], "interval": "1s", "timeout": "30s",
               "retries": 3, "start_period": "60s"}
OPTIONS = dict(pull="missing", restart_policy="unless-stopped", capabilities=["NET_ADMIN"], devices=["/dev/net/tun"],
               healthcheck=HEALTHCHECK, network="ace-net")
IMAGE = {"Id": "sha256:gluetun", "Config": {"Env": ["PATH=/usr/bin", "VPN_TYPE=openvpn"],
                                            "Labels": {"org.opencontainers.image.version": "v3.41.1"}}}


def instances():
    plan = build_plan(["g1", "g2"], port_range="19000-19009", api_port=8001).to_dict()
    return gluetun_stack.gluetun_instances(
        [{"name": "g1", "env": {"VPN_SERVICE_PROVIDER": "protonvpn", "VPN_TYPE": "wireguard"}}, {"name": "g2"}],
        plan, "/srv/ace", "ace", api_bind="127.0.0.1", auth_toml="[[roles]]\n", config_hash_key="k" * 32,
        release="v3.41.1", healthcheck=HEALTHCHECK)


def inspect_of(instance, image=None):
    """The inspect of a container docker_container made from ``instance`` with OPTIONS (as Docker records it)."""
    image = image or IMAGE
    env = dict(item.split("=", 1) for item in image["Config"]["Env"])
    env.update(instance["env"])
    bindings = {}
    for port, ip, host_port in in_place.published_bindings(instance["published"]):
        bindings.setdefault(port, []).append({"HostIp": ip, "HostPort": host_port})
    return {
        "Image": image["Id"], "State": {"Status": "running", "Running": True, "Paused": False, "Restarting": False},
        "Config": {"Env": ["%s=%s" % pair for pair in env.items()],
                   "Labels": dict(image["Config"]["Labels"], **instance["labels"]),
                   "Healthcheck": {"Test": HEALTHCHECK["test"], "Interval": 10 ** 9, "Timeout": 30 * 10 ** 9,
                                   "Retries": 3, "StartPeriod": 60 * 10 ** 9}},
        "HostConfig": {"PortBindings": bindings, "CapAdd": ["CAP_NET_ADMIN"],
                       "Devices": [{"PathOnHost": "/dev/net/tun", "PathInContainer": "/dev/net/tun",
                                    "CgroupPermissions": "rwm"}],
                       "Mounts": [{"Type": m["type"], "Source": m["source"], "Target": m["target"],
                                   **({"ReadOnly": True} if m.get("read_only") else {})} for m in instance["mounts"]],
                       "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0}},
        "NetworkSettings": {"Networks": {"ace-net": {}}},
    }


def test_instances_carry_the_labels_and_mounts_the_task_gives():
    first = instances()[0]
    assert first["mounts"] == [
        {"type": "bind", "source": "/srv/ace/gluetun/g1/state", "target": "/gluetun"},
        {"type": "bind", "source": "/srv/ace/gluetun/g1/auth", "target": "/gluetun/auth", "read_only": True}]
    # The same keyed hash as before the labels were built here: auth file, healthcheck as JSON, release.
    hashed = gluetun_stack.config_hash("[[roles]]\n" + json.dumps(HEALTHCHECK) + "v3.41.1", "k" * 32)
    assert first["labels"] == {"acestream.managed-by": "acestream.orchestrator.gluetun", "acestream.pool": "ace",
                               "acestream.gluetun.release": "v3.41.1", "acestream.gluetun.index": "0",
                               "acestream.config-hash": hashed}
    no_auth = gluetun_stack.gluetun_instances([{"name": "g1"}], build_plan(["g1"], port_range="19000-19009",
                                                                           api_port=8001).to_dict(),
                                              "/srv/ace", "ace", auth_toml=None, config_hash_key="k", release="v3.39.0")
    assert [m["target"] for m in no_auth[0]["mounts"]] == ["/gluetun"]
    assert "labels" not in gluetun_stack.gluetun_instances([{"name": "g1"}], build_plan(
        ["g1"], port_range="19000-19009", api_port=8001).to_dict(), "/srv/ace", "ace")[0]


def test_a_container_as_docker_container_made_it_is_in_place():
    for instance in instances():
        assert in_place.gluetun_differences(instance, inspect_of(instance), IMAGE, **OPTIONS) == []


def drifted(change):
    instance = instances()[0]
    inspect = inspect_of(instance)
    change(inspect)
    return in_place.gluetun_differences(instance, inspect, IMAGE, **OPTIONS)


@pytest.mark.parametrize("change, difference", [
    (lambda i: i["State"].update(Status="exited", Running=False), "state exited"),
    (lambda i: i["State"].update(Paused=True), "state running"),
    (lambda i: i.update(Image="sha256:older"), "image"),
    (lambda i: i["Config"]["Env"].append("EXTRA=1"), "env"),
    (lambda i: i["Config"]["Env"].remove("VPN_TYPE=wireguard"), "env"),
    (lambda i: i["Config"]["Env"].append("VPN_TYPE=openvpn"), "env"),  # the same name twice
    (lambda i: i["Config"]["Labels"].update({"acestream.config-hash": "0" * 16}), "labels"),
    (lambda i: i["Config"]["Labels"].update({"added": "by hand"}), "labels"),
    (lambda i: i["Config"]["Labels"].update({"org.opencontainers.image.version": "v3.40.0"}), "labels"),
    (lambda i: i["Config"]["Labels"].pop("acestream.pool"), "labels"),
    (lambda i: i["HostConfig"]["PortBindings"].pop("19000/tcp"), "published ports"),
    (lambda i: i["HostConfig"]["PortBindings"]["8001/tcp"][0].update(HostIp="0.0.0.0"), "published ports"),
    (lambda i: i["HostConfig"]["PortBindings"]["8001/tcp"][0].update(HostPort="8005"), "published ports"),
    (lambda i: i["HostConfig"].update(CapAdd=["NET_ADMIN", "SYS_ADMIN"]), "capabilities"),
    (lambda i: i["HostConfig"].update(CapAdd=None), "capabilities"),
    (lambda i: i["HostConfig"].update(Devices=[]), "devices"),
    (lambda i: i["HostConfig"]["Devices"][0].update(CgroupPermissions="r"), "devices"),
    (lambda i: i["HostConfig"]["Mounts"][1].pop("ReadOnly"), "mounts"),
    (lambda i: i["HostConfig"]["Mounts"].pop(), "mounts"),
    (lambda i: i["HostConfig"]["RestartPolicy"].update(Name="always"), "restart policy"),
    (lambda i: i["Config"]["Healthcheck"].update(Interval=2 * 10 ** 9), "healthcheck"),
    (lambda i: i["Config"]["Healthcheck"].update(StartInterval=10 ** 9), "healthcheck"),
    (lambda i: i["Config"].pop("Healthcheck"), "healthcheck"),
    (lambda i: i["NetworkSettings"].update(Networks={"bridge": {}}), "network"),
])
def test_each_drift_sends_the_container_to_docker_container(change, difference):
    assert drifted(change) == [difference]


@pytest.mark.parametrize("options, image, difference", [
    (dict(OPTIONS, pull="always"), IMAGE, "image pulled every run"),
    (OPTIONS, None, "image not on the Docker host"),
    (dict(OPTIONS, healthcheck=dict(HEALTHCHECK, interval="soon")), IMAGE, "healthcheck"),
    (dict(OPTIONS, healthcheck=dict(HEALTHCHECK, unknown_field=1)), IMAGE, "healthcheck"),
])
def test_what_the_rule_cannot_tell_goes_to_docker_container(options, image, difference):
    instance = instances()[0]
    assert in_place.gluetun_differences(instance, inspect_of(instance), image, **options)[-1:] == [difference]
    assert in_place.gluetun_differences(instance, None, IMAGE, **OPTIONS) == ["missing"]


def test_the_image_environment_counts_as_docker_container_counts_it():
    """The image's own variables are part of what docker_container expects; the task's values win over them."""
    instance = instances()[1]
    inspect = inspect_of(instance)
    assert "VPN_TYPE=openvpn" in inspect["Config"]["Env"]
    assert in_place.gluetun_differences(instance, inspect, IMAGE, **OPTIONS) == []
    other_image = copy.deepcopy(IMAGE)
    other_image["Config"]["Env"].append("NEW_IN_IMAGE=1")
    assert in_place.gluetun_differences(instance, inspect, other_image, **OPTIONS) == ["env"]


@pytest.mark.parametrize("given, recorded, same", [
    ({"test": "curl -f localhost"}, {"Test": ["CMD-SHELL", "curl -f localhost"]}, True),
    ({"interval": "1m30s"}, {"Interval": 90 * 10 ** 9}, True),
    ({"interval": "500ms"}, {"Interval": 5 * 10 ** 8}, True),
    ({"interval": 10}, {"Interval": 10 * 10 ** 9}, True),
    ({"interval": "10s"}, {"Interval": 10 * 10 ** 9, "Timeout": 5}, False),
    ({"retries": "3"}, {"Retries": 3}, False),
    ({"interval": True}, {"Interval": 10 ** 9}, False),
])
def test_healthcheck_in_place(given, recorded, same):
    assert in_place.healthcheck_in_place(given, recorded) is same


def test_published_bindings_expand_ranges_and_read_addresses():
    assert in_place.published_bindings(["127.0.0.1:8002:8001", "19000-19001:19000-19001", "::1:9000:9000/udp",
                                        "0.0.0.0:7000:7000"]) == {
        ("8001/tcp", "127.0.0.1", "8002"), ("19000/tcp", "", "19000"), ("19001/tcp", "", "19001"),
        ("9000/udp", "::1", "9000"), ("7000/tcp", "", "7000")}
    with pytest.raises(in_place.InPlaceError, match="maps 2 host ports onto 1 container ports"):
        in_place.published_bindings(["19000-19001:19000"])
    with pytest.raises(in_place.InPlaceError, match="'127.0.0.1:x:8001' is not .ip:.host:container with port numbers"):
        in_place.published_bindings(["127.0.0.1:x:8001"])
    # The reshape reads the host ports of the same items with the same parser, and words its errors as its own.
    with pytest.raises(reshape.ReshapeError, match="maps 2 host ports onto 1 container ports"):
        reshape.gluetun_reshape([], "ace", [{"name": "g1", "published": ["19000-19001:19000"]}], "/srv/ace")


def test_reshape_converges_those_not_in_place_and_those_removed_first():
    both = instances()
    inspects = {instance["name"]: inspect_of(instance) for instance in both}
    containers = [{"Names": ["/g1"], "Labels": both[0]["labels"], "State": "running", "Ports": []},
                  {"Names": ["/g2"], "Labels": both[1]["labels"], "State": "running", "Ports": []}]
    out = reshape.gluetun_reshape(containers, "ace", both, "/srv/ace", inspects=inspects, image=IMAGE,
                                  converge_options=OPTIONS)
    assert out["converge"] == []
    inspects["g2"]["Config"]["Env"].append("EXTRA=1")
    out = reshape.gluetun_reshape(containers, "ace", both, "/srv/ace", inspects=inspects, image=IMAGE,
                                  converge_options=OPTIONS)
    assert out["converge"] == ["g2"]
    # Not read: every container goes to docker_container, as before the rule.
    assert reshape.gluetun_reshape(containers, "ace", both, "/srv/ace")["converge"] == ["g1", "g2"]
    with pytest.raises(reshape.ReshapeError, match="inspects must map container names to their inspect, not a list"):
        reshape.gluetun_reshape(containers, "ace", both, "/srv/ace", inspects=[], image=IMAGE,
                                converge_options=OPTIONS)
