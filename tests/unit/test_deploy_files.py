"""deploy/ is checked where it can be here: files parse, name every component, match the code they describe."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from abuse_desk.deploy import DEFINITIONS_PATH, definitions_json, rabbitmq_definitions
from abuse_desk.runtime import COMPONENTS
from core import metrics
from core.topology import QUEUES, queue_arguments

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def test_committed_rabbitmq_definitions_are_the_generated_ones() -> None:
    committed = (ROOT / DEFINITIONS_PATH).read_text(encoding="utf-8")
    assert committed == definitions_json(), "run: abuse-desk deploy rabbitmq-definitions -o " + DEFINITIONS_PATH


def test_definitions_carry_every_queue_binding_and_dead_letter_target_of_the_topology() -> None:
    d = rabbitmq_definitions("p.")
    queues = {q["name"]: q for q in d["queues"]}
    bindings = {(b["source"], b["destination"], b["routing_key"]) for b in d["bindings"]}
    for spec in QUEUES:
        assert queues["p." + spec.name]["arguments"] == queue_arguments(spec, "p.")
        assert queues["p." + spec.name]["arguments"]["x-queue-type"] == "quorum"
        assert queues["p." + spec.dead]["durable"] is True
        assert {("p.abuse-desk", "p." + spec.name, key) for key in spec.bindings} <= bindings
        assert ("p.abuse-desk.dead", "p." + spec.dead, "p." + spec.name) in bindings
    policies = {p["name"]: p for p in d["policies"]}
    for spec in QUEUES:
        policy = policies[f"p.{spec.name}.dead-lettering"]
        assert re.fullmatch(policy["pattern"], "p." + spec.name)
        assert not re.fullmatch(policy["pattern"], "p." + spec.dead)
        assert policy["definition"]["delivery-limit"] == spec.delivery_limit
    assert {e["name"]: e["type"] for e in d["exchanges"]} == {"p.abuse-desk": "topic", "p.abuse-desk.dead": "direct"}


def test_compose_file_has_a_healthy_service_per_component_and_the_infrastructure() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    for name in COMPONENTS:
        service = services[name]
        assert service["command"] == ["serve", name]
        assert service["healthcheck"]["test"] == ["CMD", "abuse-desk", "health"]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["environment"]["ABUSE_DESK_DATABASE_URL"].startswith("postgresql://")
    assert {"rabbitmq", "postgres", "mailpit", "migrate", "rabbitmq-definitions"} <= set(services)
    for infra in ("rabbitmq", "postgres", "mailpit"):
        assert services[infra]["healthcheck"]["test"]
    plugins = (DEPLOY / "rabbitmq" / "enabled_plugins").read_text(encoding="utf-8")
    assert "rabbitmq_management" in plugins and "rabbitmq_prometheus" in plugins
    assert services["notify"]["environment"]["ABUSE_DESK_MAIL_OUT"] == "smtp://mailpit:1025"


def test_kubernetes_manifests_parse_and_name_every_component() -> None:
    docs = [d for path in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in _yaml_docs(path)]
    kinds: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        kinds.setdefault(d["kind"], []).append(d)
    deployments = {d["spec"]["template"]["spec"]["containers"][0]["args"][1]: d for d in kinds["Deployment"]}
    assert set(deployments) == set(COMPONENTS)
    for name, d in deployments.items():
        container = d["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ["serve", name]
        assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        refs = {next(iter(v.values()))["name"] for v in container["envFrom"]}
        assert refs == {"abuse-desk"}
        assert d["spec"]["selector"]["matchLabels"] == d["spec"]["template"]["metadata"]["labels"]
    smtp_services = [s for s in kinds["Service"] if s["spec"]["selector"].get("app.kubernetes.io/component") == "smtp"]
    assert smtp_services and smtp_services[0]["spec"]["ports"][0]["port"] == 25
    assert any(
        p["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/component") == "smtp"
        for p in kinds["PodDisruptionBudget"]
        if "matchLabels" in p["spec"]["selector"]
    )
    config = kinds["ConfigMap"][0]["data"]
    tomllib.loads(config["abuse-desk.toml"])
    assert {"ABUSE_DESK_DATABASE_URL", "ABUSE_DESK_AMQP_URL", "ABUSE_DESK_WEB_TOKEN"} <= set(
        kinds["Secret"][0]["stringData"]
    )
    listed = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text(encoding="utf-8"))["resources"]
    assert all((DEPLOY / "k8s" / f).exists() for f in listed) and "secret.example.yaml" not in listed


def test_systemd_units_serve_any_component_and_each_instance_has_its_own_metrics_port() -> None:
    unit = (DEPLOY / "systemd" / "abuse-desk@.service").read_text(encoding="utf-8")
    assert "ExecStart=/opt/abuse-desk/bin/abuse-desk serve %i" in unit
    target = (DEPLOY / "systemd" / "abuse-desk.target").read_text(encoding="utf-8")
    ports = set()
    for name in COMPONENTS:
        assert f"abuse-desk@{name}.service" in target
        env = (DEPLOY / "systemd" / "env" / f"{name}.env").read_text(encoding="utf-8")
        ports.add(re.search(r"ABUSE_DESK_METRICS_LISTEN=(\S+)", env).group(1))  # type: ignore[union-attr]
    assert len(ports) == len(COMPONENTS)


def test_grafana_dashboard_only_queries_metrics_that_exist() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "abuse-desk.json").read_text(encoding="utf-8"))
    ours = {m.name for m in metrics.REGISTRY.collect()}
    used: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"\b(abuse_desk_[a-z_]+?)(?:_total|_bucket|_count|_sum)?\b", target["expr"]))
    assert used, "the dashboard queries nothing"
    assert used <= ours, used - ours
    assert {"abuse_desk_queue_messages", "abuse_desk_handler_seconds", "abuse_desk_sla_cases"} <= used


def test_image_builds_from_the_lock_and_the_lock_pins_every_dependency() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert "requirements.lock" in dockerfile and "--no-deps" in dockerfile
    assert 'ENTRYPOINT ["abuse-desk"]' in dockerfile
    lock = {
        line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
        for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for requirement in project["dependencies"]:
        name = re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        assert name in lock, f"{name} is not pinned in requirements.lock (make lock)"
