"""deploy/k8s renders, validates against the schemas of its kinds, and keeps certmon's rules for every Deployment.

Each overlay (and the prod overlay with the optional dashboard Ingress) is rendered with `kubectl kustomize`. Core
objects are validated, strictly (unknown fields are errors, as `kubectl apply` makes them), against the Kubernetes
OpenAPI schemas that `kubernetes-validate` bundles; custom resources against the OpenAPI schemas of their CRDs
(KEDA, prometheus-operator, RabbitMQ Cluster Operator, CloudNativePG) kept in `../shared/reference/crds/`, and
the one it lacks (prometheus-operator's PrometheusRule) in `tests/fixtures/crds/`. Then
every Deployment, whatever its name, must carry the probes, the restricted security context, resource requests
and limits, a PodDisruptionBudget, a Service and ServiceMonitor, and NetworkPolicies, so a new service cannot
ship without them.
"""

import copy
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from services import START_ORDER
from services.evaluator.handlers import QUEUE as EVALUATOR_QUEUE
from services.scanner.handlers import QUEUE as SCANNER_QUEUE
from shared.config import load_config
from shared.settings import Settings
from shared.template_checks import template_problems

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
CRDS = ROOT.parent / "shared" / "reference" / "crds"
#: CRDs the shared reference lacks, as their projects publish them (tests/fixtures/crds/README.md).
PROJECT_CRDS = ROOT / "tests" / "fixtures" / "crds"
#: The oldest Kubernetes the manifests are for (deploy/k8s/README.md); its schemas are the ones checked.
KUBERNETES_VERSION = "1.30.0"
#: What `kubectl kustomize` must embed: components, replacements and `labels` as these manifests use them.
MINIMUM_KUSTOMIZE = (5, 0)

#: The init container's command after the image's entrypoint (`certmon`).
VALIDATE_ARGS = ["config", "validate", "/etc/certmon/certmon.yaml"]

Obj = dict[str, Any]

# --- rendering ---------------------------------------------------------------------------------------------------


def _kubectl() -> str:
    """The kubectl to render with; skips the test where there is none, or where its kustomize is too old."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (.ci/run installs it where a package source has it)")
    version = json.loads(
        subprocess.run([kubectl, "version", "--client", "-o", "json"], capture_output=True, check=True).stdout
    ).get("kustomizeVersion", "v0.0.0")
    if tuple(int(part) for part in version.lstrip("v").split(".")[:2]) < MINIMUM_KUSTOMIZE:
        pytest.skip(f"kubectl embeds kustomize {version}; these manifests need v5 or newer")
    return kubectl


@cache
def _render(directory: Path) -> tuple[Obj, ...]:
    """`kubectl kustomize DIRECTORY`, parsed; a render failure fails the test with kustomize's message."""
    result = subprocess.run([_kubectl(), "kustomize", str(directory)], capture_output=True, text=True)
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def _with_dashboard_ingress(tmp: Path) -> Path:
    """A kustomization of the prod overlay plus the optional dashboard Ingress component (commented out there)."""
    k8s = os.path.relpath(K8S, tmp)  # kustomize refuses absolute paths
    kustomization = {
        "namespace": "certmon",
        "resources": [f"{k8s}/overlays/prod"],
        "components": [f"{k8s}/components/dashboard-ingress"],
    }
    (tmp / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return tmp


RENDERINGS = ("dev", "prod", "prod+dashboard-ingress")


@pytest.fixture(scope="module", params=RENDERINGS)
def rendering(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> "Rendering":
    """Each overlay's objects, rendered once per module."""
    name: str = request.param
    if name == "prod+dashboard-ingress":
        directory = _with_dashboard_ingress(tmp_path_factory.mktemp("dashboard-ingress"))
    else:
        directory = K8S / "overlays" / name
    return Rendering(name, _render(directory))


class Rendering:
    """The objects of one rendered overlay, with the look-ups the checks need."""

    def __init__(self, name: str, objects: tuple[Obj, ...]) -> None:
        self.name, self.objects = name, objects

    def of_kind(self, kind: str) -> list[Obj]:
        """Every object of `kind`."""
        return [obj for obj in self.objects if obj["kind"] == kind]

    def named(self, kind: str, name: str) -> Obj | None:
        """The object of `kind` called `name`, if there is one."""
        return next((obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name), None)

    @property
    def namespace(self) -> str:
        """The one namespace every namespaced object is in."""
        (namespace,) = {obj["metadata"]["name"] for obj in self.of_kind("Namespace")}
        return str(namespace)

    def cluster_name(self, api_group: str, kind: str) -> str:
        """The name of the overlay's one operator cluster of this group and kind."""
        (cluster,) = [obj for obj in self.of_kind(kind) if obj["apiVersion"].startswith(api_group + "/")]
        return str(cluster["metadata"]["name"])


# --- label selectors ---------------------------------------------------------------------------------------------


def selects(selector: Obj | None, labels: dict[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels, matchExpressions) selects these labels; an empty one selects all."""
    selector = selector or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if not {
            "In": present and labels[key] in values,
            "NotIn": not present or labels[key] not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]:
            return False
    return True


def test_label_selectors_follow_kubernetes_semantics() -> None:
    """matchLabels must all match and every matchExpressions operator is applied as Kubernetes applies it."""
    labels = {"app": "certmon", "tier": "scanner"}
    assert selects({}, labels)
    assert selects({"matchLabels": {"app": "certmon"}}, labels)
    assert not selects({"matchLabels": {"app": "certmon", "tier": "evaluator"}}, labels)
    assert selects({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["scanner"]}]}, labels)
    assert not selects({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["scanner"]}]}, labels)
    assert selects({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, labels)
    assert not selects({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, labels)


# --- schemas -----------------------------------------------------------------------------------------------------


def _crd_files() -> list[Path]:
    if not CRDS.is_dir():
        pytest.skip(f"the CRD schemas are not at {CRDS} (the shared reference folder beside the project)")
    return sorted([*CRDS.glob("*.yaml"), *PROJECT_CRDS.glob("*.yaml")])


def _strict(schema: Any) -> Any:
    """The schema with unknown fields refused wherever the CRD lists the fields and keeps no others, as the API
    server's strict field validation (kubectl apply's default) does."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items() if key != "properties"}
    if "properties" in schema:
        out["properties"] = {name: _strict(value) for name, value in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    return out


@cache
def crd_schemas() -> dict[tuple[str, str], Any]:
    """(apiVersion, kind) → the strict OpenAPI v3 schema of every served version of every CRD in the reference."""
    schemas: dict[tuple[str, str], Any] = {}
    for path in _crd_files():
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served", True):
                schemas[(f"{group}/{version['name']}", kind)] = _strict(version["schema"]["openAPIV3Schema"])
    return schemas


def _is_custom(obj: Obj) -> bool:
    """Custom resources are the kinds of an API group that is not one of Kubernetes' own."""
    group = obj["apiVersion"].rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


def _errors(validator: Any, obj: Obj) -> Iterator[str]:
    for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
        yield f"{obj['kind']}/{obj['metadata']['name']}: {'.'.join(map(str, error.absolute_path))}: {error.message}"


def test_core_objects_validate_against_the_kubernetes_schemas(rendering: Rendering) -> None:
    """Every Kubernetes object validates, unknown fields refused, against the API of the oldest supported version."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate (the test extra)")
    from kubernetes_validate.utils import ValidationError

    problems = []
    core = [obj for obj in rendering.objects if not _is_custom(obj)]
    for obj in core:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except ValidationError as error:
            path = ".".join(map(str, error.absolute_path))
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {error.message}")
    assert core and not problems, "\n".join(problems)


def test_custom_resources_validate_against_their_crds(rendering: Rendering) -> None:
    """Every ScaledObject, TriggerAuthentication, ServiceMonitor, PrometheusRule, RabbitmqCluster and CNPG Cluster
    validates against the OpenAPI schema of its CRD's version, unknown fields refused."""
    import jsonschema

    schemas = crd_schemas()
    custom = [obj for obj in rendering.objects if _is_custom(obj)]
    problems = []
    for obj in custom:
        schema = schemas.get((obj["apiVersion"], obj["kind"]))
        if schema is None:
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: no CRD schema for {obj['apiVersion']}")
            continue
        problems.extend(_errors(jsonschema.Draft4Validator(schema), obj))  # OpenAPI 3.0 schemas are draft 4's kin
    assert {obj["kind"] for obj in custom} >= {
        "ScaledObject",
        "TriggerAuthentication",
        "ServiceMonitor",
        "PrometheusRule",
    }
    assert not problems, "\n".join(problems)


def test_a_typo_in_a_custom_resource_is_caught() -> None:
    """The strict CRD schema refuses a misspelt field that the API server would otherwise drop silently."""
    import jsonschema

    schema = crd_schemas()[("keda.sh/v1alpha1", "ScaledObject")]
    good = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "x"},
        "spec": {"scaleTargetRef": {"name": "x"}, "triggers": [{"type": "rabbitmq", "metadata": {}}]},
    }
    bad = copy.deepcopy(good)
    bad["spec"]["maxReplicas"] = 3
    assert not list(_errors(jsonschema.Draft4Validator(schema), good))
    assert list(_errors(jsonschema.Draft4Validator(schema), bad))


# --- every Deployment --------------------------------------------------------------------------------------------


def _pod(deployment: Obj) -> Obj:
    return deployment["spec"]["template"]


def _port(container: Obj, name: str) -> int | None:
    return next((p["containerPort"] for p in container.get("ports", []) if p.get("name") == name), None)


def _env(container: Obj) -> dict[str, Obj]:
    return {item["name"]: item for item in container.get("env", [])}


def drain_seconds(pod_spec: Obj) -> float:
    """The longest a container of the pod takes to stop on SIGTERM: its CERTMON_DRAIN_SECONDS, else the default
    (an `env` value wins over the `envFrom` ConfigMap's)."""
    default = Settings.model_fields["drain_seconds"].default
    return max(float(_env(c).get("CERTMON_DRAIN_SECONDS", {}).get("value", default)) for c in pod_spec["containers"])


def container_violations(container: Obj, *, init: bool) -> list[str]:
    """What a container lacks of the restricted security context and of resource requests and limits."""
    name, problems = container["name"], []
    security = container.get("securityContext") or {}
    if security.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{name}: allowPrivilegeEscalation is not false")
    if security.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{name}: readOnlyRootFilesystem is not true")
    capabilities = security.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []) or capabilities.get("add"):
        problems.append(f"{name}: capabilities do not drop ALL (and add none)")
    if security.get("privileged") or security.get("runAsUser") == 0 or security.get("runAsNonRoot") is False:
        problems.append(f"{name}: may run privileged or as root")
    resources = container.get("resources") or {}
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in (resources.get(kind) or {}):
                problems.append(f"{name}: no {resource} {kind}")
    if init:
        return problems
    port = _port(container, "http")
    if port is None:
        problems.append(f"{name}: no container port named http")
    env = _env(container)
    if env.get("CERTMON_HTTP_PORT", {}).get("value") != str(port):
        problems.append(f"{name}: CERTMON_HTTP_PORT is not the http port {port}")
    if env.get("CERTMON_HTTP_HOST", {}).get("value") != "0.0.0.0":
        problems.append(f"{name}: CERTMON_HTTP_HOST does not listen on every address")
    for probe, path in (
        ("startupProbe", None),
        ("livenessProbe", "/healthz/live"),
        ("readinessProbe", "/healthz/ready"),
    ):
        get = (container.get(probe) or {}).get("httpGet") or {}
        if get.get("port") != "http" or (path is not None and get.get("path") != path):
            problems.append(f"{name}: {probe} is not an HTTP GET of {path or '/healthz/*'} on the http port")
    return problems


def pod_violations(deployment: Obj) -> list[str]:
    """What a Deployment's pod lacks of certmon's rules: restricted security, writable dirs, the config check."""
    spec, problems = _pod(deployment)["spec"], []
    security = spec.get("securityContext") or {}
    if security.get("runAsNonRoot") is not True:
        problems.append("pod: runAsNonRoot is not true")
    for field in ("runAsUser", "runAsGroup"):
        if not isinstance(security.get(field), int) or security[field] <= 0:
            problems.append(f"pod: {field} is not a non-zero id")
    if (security.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append("pod: seccompProfile is not RuntimeDefault")
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("pod: mounts a service account token")
    if any(spec.get(field) for field in ("hostNetwork", "hostPID", "hostIPC")):
        problems.append("pod: shares a host namespace")
    drain = drain_seconds(spec)
    if spec.get("terminationGracePeriodSeconds", 30) <= drain:
        problems.append(f"pod: terminationGracePeriodSeconds is not longer than the {drain:g} s drain")
    empty_dirs = {volume["name"] for volume in spec.get("volumes", []) if "emptyDir" in volume}
    for container in spec["containers"]:
        writable = {m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] in empty_dirs}
        if not {"/tmp", "/var/lib/certmon"} <= writable:
            problems.append(f"{container['name']}: /tmp and /var/lib/certmon (CERTMON_DATA_DIR) are not emptyDirs")
    validate = [c for c in spec.get("initContainers", []) if c.get("args") == VALIDATE_ARGS]
    if not validate or not any(m["mountPath"] == "/etc/certmon" for m in validate[0].get("volumeMounts", [])):
        problems.append("pod: no init container runs `certmon config validate` on the mounted certmon.yaml")
    problems += [p for c in spec.get("initContainers", []) for p in container_violations(c, init=True)]
    problems += [p for c in spec["containers"] for p in container_violations(c, init=False)]
    return problems


def companion_violations(deployment: Obj, rendering: Rendering) -> list[str]:
    """What a Deployment lacks around it: a PDB, a Service and ServiceMonitor for /metrics, NetworkPolicies."""
    labels = _pod(deployment)["metadata"]["labels"]
    component = labels.get("app.kubernetes.io/component")
    problems = []
    if not any(selects(pdb["spec"].get("selector"), labels) for pdb in rendering.of_kind("PodDisruptionBudget")):
        problems.append("no PodDisruptionBudget selects its pods")
    services = [
        s
        for s in rendering.of_kind("Service")
        if s["spec"].get("selector")
        and selects({"matchLabels": s["spec"]["selector"]}, labels)
        and any(p.get("name") == "http" and p.get("targetPort") == "http" for p in s["spec"].get("ports", []))
    ]
    if not services:
        problems.append("no Service exposes its http port")
    monitored = [
        m
        for m in rendering.of_kind("ServiceMonitor")
        for s in services
        if selects(m["spec"].get("selector"), s["metadata"].get("labels", {}))
        and any(e.get("port") == "http" and e.get("path") == "/metrics" for e in m["spec"].get("endpoints", []))
    ]
    if not monitored:
        problems.append("no ServiceMonitor scrapes /metrics from its Service")
    policies = [p for p in rendering.of_kind("NetworkPolicy") if selects(p["spec"]["podSelector"], labels)]
    if not any(
        set(p["spec"].get("policyTypes", [])) >= {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
        for p in policies
    ):
        problems.append("no default-deny NetworkPolicy covers its pods")
    own = [
        p
        for p in policies
        if (p["spec"]["podSelector"].get("matchLabels") or {}).get("app.kubernetes.io/component") == component
    ]
    if not any(
        any(port.get("port") == "http" for rule in p["spec"].get("ingress", []) for port in rule.get("ports", []))
        for p in own
    ):
        problems.append("no NetworkPolicy of its own lets the http port be scraped")
    return problems


def test_every_service_has_one_deployment_running_it(rendering: Rendering) -> None:
    """The five services each run from one Deployment of the one image, by their `certmon <service>` command."""
    deployments = rendering.of_kind("Deployment")
    commands = sorted(d["spec"]["template"]["spec"]["containers"][0]["args"][0] for d in deployments)
    assert commands == sorted(START_ORDER)
    images = {
        c["image"]
        for d in deployments
        for c in [*_pod(d)["spec"]["containers"], *_pod(d)["spec"].get("initContainers", [])]
    }
    assert len(images) == 1, images


def test_every_deployment_keeps_the_pod_rules(rendering: Rendering) -> None:
    """Every Deployment has the three probes, the restricted security context, requests and limits on every
    container (init containers too), writable emptyDirs, the config check, and a grace period for the drain."""
    problems = [
        f"{d['metadata']['name']}: {problem}" for d in rendering.of_kind("Deployment") for problem in pod_violations(d)
    ]
    assert not problems, "\n".join(problems)


def test_the_reporter_has_room_in_tmp_for_the_metrics_body(rendering: Rendering) -> None:
    """The reporter streams /metrics from files in /tmp (440 MB at 100,000 targets): its emptyDir allows 1Gi,
    the other services keep 64Mi."""
    limits = {
        d["spec"]["template"]["spec"]["containers"][0]["args"][0]: next(
            v["emptyDir"]["sizeLimit"] for v in _pod(d)["spec"]["volumes"] if v["name"] == "tmp"
        )
        for d in rendering.of_kind("Deployment")
    }
    assert limits.pop("reporter") == "1Gi"
    assert set(limits.values()) == {"64Mi"}


def test_the_reporters_estate_is_scraped_apart_from_its_own_metrics(rendering: Rendering) -> None:
    """The estate's series (tens of seconds to render at 100,000 targets) have their own scrape with a timeout of a
    minute or more; the process's own metrics keep a short one, never held up by the estate."""
    monitor = rendering.named("ServiceMonitor", "certmon-reporter")
    assert monitor is not None
    by_scope = {tuple(e.get("params", {}).get("only", [])): e for e in monitor["spec"]["endpoints"]}
    assert set(by_scope) == {("process",), ("estate",)}

    def seconds(duration: str) -> int:
        return int(duration[:-1]) * {"s": 1, "m": 60}[duration[-1]]

    assert seconds(by_scope[("estate",)]["scrapeTimeout"]) >= 60
    assert seconds(by_scope[("process",)]["interval"]) <= 60


def test_every_deployment_has_its_companions(rendering: Rendering) -> None:
    """Every Deployment has a PDB, a Service and a ServiceMonitor for /metrics, and NetworkPolicies."""
    problems = [
        f"{d['metadata']['name']}: {problem}"
        for d in rendering.of_kind("Deployment")
        for problem in companion_violations(d, rendering)
    ]
    assert not problems, "\n".join(problems)


def test_a_deployment_missing_its_rules_is_caught() -> None:
    """The checks name what a bare Deployment lacks, so the policy tests cannot pass vacuously."""
    bare = {
        "metadata": {"name": "certmon-new"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/component": "new"}},
                "spec": {"containers": [{"name": "certmon", "image": "certmon"}]},
            }
        },
    }
    problems = pod_violations(bare) + companion_violations(bare, Rendering("empty", ()))
    for lacking in (
        "readOnlyRootFilesystem",
        "startupProbe",
        "no cpu limits",
        "seccompProfile",
        "config validate",
        "terminationGracePeriodSeconds",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "default-deny",
    ):
        assert any(lacking in problem for problem in problems), lacking


# --- wiring to the operators, KEDA and the configuration ---------------------------------------------------------


def test_services_read_the_operators_secrets_of_the_named_clusters(rendering: Rendering) -> None:
    """CERTMON_AMQP_URL comes from <rabbitmq>-default-user's connection_string and CERTMON_DATABASE_URL from
    <cnpg>-app's uri, for the clusters the overlay names; the evaluator, which keeps no state, has no database."""
    rabbitmq = rendering.cluster_name("rabbitmq.com", "RabbitmqCluster")
    postgres = rendering.cluster_name("postgresql.cnpg.io", "Cluster")
    for deployment in rendering.of_kind("Deployment"):
        (container,) = [c for c in _pod(deployment)["spec"]["containers"] if c["name"] == "certmon"]
        env = _env(container)
        amqp = env["CERTMON_AMQP_URL"]["valueFrom"]["secretKeyRef"]
        assert (amqp["name"], amqp["key"]) == (f"{rabbitmq}-default-user", "connection_string")
        if container["args"] == ["evaluator"]:
            assert "CERTMON_DATABASE_URL" not in env
            continue
        database = env["CERTMON_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert (database["name"], database["key"]) == (f"{postgres}-app", "uri")
    broker = rendering.named("NetworkPolicy", "certmon-broker")
    database_policy = rendering.named("NetworkPolicy", "certmon-database")
    assert broker is not None and database_policy is not None
    assert broker["spec"]["egress"][0]["to"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": rabbitmq}
    assert database_policy["spec"]["egress"][0]["to"][0]["podSelector"]["matchLabels"] == {"cnpg.io/cluster": postgres}


@pytest.mark.parametrize(("service", "queue"), [("scanner", SCANNER_QUEUE), ("evaluator", EVALUATOR_QUEUE)])
def test_keda_scales_on_the_queue_backlog_through_the_management_api(
    rendering: Rendering, service: str, queue: str
) -> None:
    """The scanner's and the evaluator's ScaledObjects read their queue's length (ready and unacknowledged) from
    RabbitMQ's management API, as the operator's default user, and the HPA alone sets their replicas."""
    rabbitmq = rendering.cluster_name("rabbitmq.com", "RabbitmqCluster")
    scaled = rendering.named("ScaledObject", f"certmon-{service}")
    assert scaled is not None
    deployment = rendering.named("Deployment", scaled["spec"]["scaleTargetRef"]["name"])
    assert deployment is not None and deployment["spec"]["template"]["spec"]["containers"][0]["args"] == [service]
    assert "replicas" not in deployment["spec"]
    assert scaled["spec"]["minReplicaCount"] >= 1  # the scanner's scheduler fills the queue: never zero
    (trigger,) = scaled["spec"]["triggers"]
    meta = trigger["metadata"]
    assert (trigger["type"], meta["protocol"], meta["mode"], meta["queueName"]) == (
        "rabbitmq",
        "http",
        "QueueLength",
        queue,
    )
    assert meta["host"] == f"http://{rabbitmq}.{rendering.namespace}.svc:15672/"
    auth = rendering.named("TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert auth is not None
    assert {(ref["parameter"], ref["name"], ref["key"]) for ref in auth["spec"]["secretTargetRef"]} == {
        ("username", f"{rabbitmq}-default-user", "username"),
        ("password", f"{rabbitmq}-default-user", "password"),
    }


def test_the_configuration_is_valid_and_the_settings_parse(rendering: Rendering, tmp_path: Path) -> None:
    """The certmon.yaml of the ConfigMap passes `certmon config validate`'s checks and certmon-env's CERTMON_*
    variables are settings certmon accepts."""
    (config_map,) = [c for c in rendering.of_kind("ConfigMap") if c["metadata"]["name"].startswith("certmon-config")]
    path = tmp_path / "certmon.yaml"
    path.write_text(config_map["data"]["certmon.yaml"])
    assert template_problems(load_config(path)) == []
    (env_map,) = [c for c in rendering.of_kind("ConfigMap") if c["metadata"]["name"].startswith("certmon-env")]
    values = {k.removeprefix("CERTMON_").lower(): v for k, v in env_map["data"].items() if k.startswith("CERTMON_")}
    settings = Settings(**values)
    assert settings.config == Path("/etc/certmon/certmon.yaml")
    assert set(values) <= set(Settings.model_fields)


def test_prod_spreads_every_deployment_over_zones_and_nodes(rendering: Rendering) -> None:
    """In the prod overlay every Deployment spreads its own pods over zones and over nodes."""
    if not rendering.name.startswith("prod"):
        pytest.skip("topology spread is the prod overlay's")
    for deployment in rendering.of_kind("Deployment"):
        constraints = _pod(deployment)["spec"].get("topologySpreadConstraints", [])
        keys = {c["topologyKey"] for c in constraints}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}, deployment["metadata"]["name"]
        assert all(selects(c["labelSelector"], _pod(deployment)["metadata"]["labels"]) for c in constraints)
        assert all("app.kubernetes.io/component" in c.get("matchLabelKeys", []) for c in constraints)


def test_everything_lands_in_the_overlays_namespace(rendering: Rendering) -> None:
    """Every namespaced object is in the overlay's namespace, which the overlay creates."""
    namespace = rendering.namespace
    stray = [
        f"{obj['kind']}/{obj['metadata']['name']}"
        for obj in rendering.objects
        if obj["kind"] != "Namespace" and obj["metadata"].get("namespace") != namespace
    ]
    assert not stray, stray
