"""docs/openapi.yaml: a valid OpenAPI 3.1 document, every $ref resolving, no route missing.

The document is checked against the official OpenAPI 3.1 schema (the OpenAPI Initiative's
``schemas/v3.1/schema.yaml``, as openapi-spec-validator ships it), and every Schema Object
in it against the OAS 3.1 schema dialect (openapi-schema-validator). References to
Hubject's official CPO OpenAPI are pinned URLs; they are resolved against the copy the
tests read (``oicp_spec_dir``), never downloaded. The route tests compare the document's
paths with what the three aiohttp applications (inbound server, embedded bus API, ops
server) register, in both directions.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
import yaml
from aiohttp import web
from jsonschema import Draft202012Validator
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator.schemas import schema_v31 as OPENAPI_31
from prometheus_client import CollectorRegistry
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT202012

from hubject_connector.app import Service, create_app
from hubject_connector.bus.contract import MessageType, make_envelope
from hubject_connector.bus.embedded import EmbeddedBus
from hubject_connector.bus.embedded_api import http_api
from hubject_connector.certs import DevPki
from hubject_connector.config import Config
from hubject_connector.inbound.commands import Commands
from hubject_connector.inbound.connection import Connections
from hubject_connector.inbound.handlers import Handlers
from hubject_connector.inbound.metrics import InboundMetrics
from hubject_connector.inbound.tls import ServerTls
from hubject_connector.simulator import Simulator
from tests.integration.service.harness import Backend, config_of, settings
from tests.validation import innermost_errors

REPO: Final = Path(__file__).resolve().parents[3]
OPENAPI: Final = REPO / "docs" / "openapi.yaml"
#: Hubject's CPO OpenAPI at the commit named in ../shared/oicp-2.3/SOURCE.txt.
HUBJECT_CPO: Final = (
    "https://raw.githubusercontent.com/hubject/oicp-cpo-2.3-api-doc/"
    "08efede522a31cd9339a5b5f0bbbd93726590b9e/openapi.yaml"
)
HTTP_METHODS: Final = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def load_document() -> dict[str, Any]:
    """docs/openapi.yaml, parsed (YAML aliases resolved)."""
    loaded = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """docs/openapi.yaml, parsed."""
    return load_document()


@pytest.fixture(scope="module")
def official() -> Draft202012Validator:
    """A validator of the official OpenAPI 3.1 document schema, offline."""
    assert OPENAPI_31["$id"] == "https://spec.openapis.org/oas/3.1/schema/2022-10-07"
    Draft202012Validator.check_schema(OPENAPI_31)
    return Draft202012Validator(OPENAPI_31)


def test_the_document_is_valid_by_the_official_openapi_3_1_schema(
    official: Draft202012Validator, document: dict[str, Any]
) -> None:
    assert document["openapi"].startswith("3.1.")
    assert innermost_errors(official, document) == []


@pytest.mark.parametrize(
    ("breakage", "where"),
    [
        (lambda d: d["components"]["parameters"]["providerID"].pop("in"), "providerID"),
        (lambda d: d["paths"]["/v1/messages"]["servers"][0].pop("url"), "servers"),
        (lambda d: d["components"]["securitySchemes"]["hubjectClientCertificate"].update(
            type="clientCertificate"), "hubjectClientCertificate"),
    ],
    ids=["parameter-without-location", "server-without-url", "unknown-security-type"],
)
def test_the_official_schema_refuses_a_broken_document(
    official: Draft202012Validator, breakage: Any, where: str
) -> None:
    # A control: the validator above is not one that accepts anything.
    broken = copy.deepcopy(load_document())
    breakage(broken)
    errors = innermost_errors(official, broken)
    assert errors != []
    assert any(where in error.replace("~1", "/") for error in errors), errors


def schema_objects(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every Schema Object of the document (under ``schema`` keys and components/schemas)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            where = f"{path}/{key}"
            if key == "schema" or path == "/components/schemas":
                yield where, value
            elif isinstance(value, Mapping | list):
                yield from schema_objects(value, where)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from schema_objects(value, f"{path}/{index}")


def test_every_schema_object_is_valid_in_the_oas_3_1_dialect(document: dict[str, Any]) -> None:
    found = list(schema_objects(document))
    assert len(found) > 10
    for where, schema in found:
        try:
            OAS31Validator.check_schema(schema)
        except Exception as exc:
            raise AssertionError(f"{where}: {exc}") from exc


def all_refs(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(location, $ref) of every reference in the document."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield path, value
            else:
                yield from all_refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from all_refs(value, f"{path}/{index}")


def pointer(target: Any, fragment: str) -> Any:
    """The value at JSON pointer ``fragment`` in ``target`` (KeyError when absent)."""
    for part in [p for p in fragment.split("/") if p]:
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target


def test_every_local_and_package_ref_resolves(document: dict[str, Any]) -> None:
    found = [(where, ref) for where, ref in all_refs(document) if not ref.startswith("https:")]
    assert any(ref.startswith("#/") for _, ref in found)
    assert any(ref.endswith(".json") for _, ref in found)
    for where, ref in found:
        location, _, fragment = ref.partition("#")
        target: Any = document
        if location:
            file = (OPENAPI.parent / location).resolve()
            assert file.is_file(), f"{where}: {ref}: no such file"
            target = json.loads(file.read_text(encoding="utf-8"))
        try:
            assert pointer(target, fragment) is not None, f"{where}: {ref}"
        except (KeyError, IndexError, TypeError) as exc:
            raise AssertionError(f"{where}: $ref {ref} does not resolve") from exc


@pytest.mark.spec
def test_every_oicp_body_is_an_official_schema_by_name(
    document: dict[str, Any], cpo_openapi: dict[str, Any]
) -> None:
    external = [(where, ref) for where, ref in all_refs(document) if ref.startswith("https:")]
    names = set()
    for where, ref in external:
        location, _, fragment = ref.partition("#")
        assert location == HUBJECT_CPO, f"{where}: {ref} is not the pinned official CPO OpenAPI"
        try:
            pointer(cpo_openapi, fragment)
        except KeyError as exc:
            raise AssertionError(f"{where}: {ref} names no schema of the official spec") from exc
        names.add(fragment.rsplit("/", 1)[-1])
    # Each inbound operation's request and answer is the one the official spec names.
    for path, item in document["paths"].items():
        official = cpo_openapi["paths"].get(path)
        if official is None:
            continue
        ours, theirs = item["post"], official["post"]
        body = ours["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert body.partition("#")[2] == theirs["requestBody"]["content"]["application/json"][
            "schema"]["$ref"].partition("#")[2], path
        answer = document["components"]["responses"]["Acknowledgement"]["content"][
            "application/json"]["schema"]["$ref"]
        assert answer.partition("#")[2] == theirs["responses"]["200"]["content"][
            "application/json"]["schema"]["$ref"].partition("#")[2], path
        # The official operation ids, so a reader can look each one up there.
        assert ours["operationId"] == theirs["operationId"], path
    assert {"eRoamingAuthorizeRemoteStart", "eRoamingAuthorizeRemoteStop",
            "eRoamingAuthorizeRemoteReservationStart", "eRoamingAuthorizeRemoteReservationStop",
            "eRoamingAcknowledgment"} <= names


@pytest.mark.spec
def test_the_inbound_paths_are_the_official_hubject_to_cpo_operations(
    document: dict[str, Any], cpo_openapi: dict[str, Any]
) -> None:
    inbound = {path for path, item in document["paths"].items()
               if item["post" if "post" in item else "get"]["tags"] == ["inbound"]}
    official = {path for path in cpo_openapi["paths"] if "/providers/" in path}
    assert inbound == official


# --- the document's paths are exactly the routes the servers register --------------------


def routes(app: web.Application, prefix: str = "") -> set[tuple[str, str]]:
    """(method, path without ``prefix``) of every route; HEAD only where GET is not."""
    found = set()
    for resource in app.router.resources():
        path = resource.canonical
        assert path.startswith(prefix), path
        for route in resource:
            found.add((route.method.lower(), path[len(prefix):]))
    return {(m, p) for m, p in found if m != "head" or ("get", p) not in found}


def documented(document: Mapping[str, Any], tag: str) -> set[tuple[str, str]]:
    """(method, path) of every operation of the document tagged ``tag``."""
    return {
        (method, path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS and tag in operation["tags"]
    }


@pytest.fixture
def config(dev_pki: DevPki, tmp_path: Path) -> Config:
    """A complete configuration (nothing is started from it)."""
    return config_of(tmp_path, settings(dev_pki, tmp_path, hubject_url="https://127.0.0.1:1/api"))


def test_the_inbound_routes_are_the_documented_ones(
    document: dict[str, Any], config: Config
) -> None:
    metrics = InboundMetrics.for_registry(CollectorRegistry())
    bus = EmbeddedBus(config.bus.embedded)
    handlers = Handlers(
        config.inbound, tls=ServerTls(config.inbound, metrics=metrics),
        commands=Commands(bus, config.inbound, metrics), metrics=metrics,
        connections=Connections(),
    )
    served = routes(handlers.application(), config.inbound.path_prefix)
    assert len(served) == 4
    assert served == documented(document, "inbound")


def test_the_embedded_bus_routes_are_the_documented_ones(
    document: dict[str, Any], config: Config
) -> None:
    served = routes(http_api(EmbeddedBus(config.bus.embedded)))
    assert ("get", "/v1/results") in served
    assert served == documented(document, "bus")


def test_the_ops_routes_are_the_documented_ones(
    document: dict[str, Any], config: Config
) -> None:
    served = routes(create_app(config))
    assert served == {("get", "/metrics"), ("get", "/healthz"), ("get", "/readyz")}
    assert served == documented(document, "ops")


def test_every_path_belongs_to_one_of_the_three_servers(document: dict[str, Any]) -> None:
    tags = {"inbound", "bus", "ops"}
    for path, item in document["paths"].items():
        operations = [op for method, op in item.items() if method in HTTP_METHODS]
        assert operations, path
        for operation in operations:
            assert len(set(operation["tags"]) & tags) == 1, path


# --- what the running servers answer is what the document says --------------------------

SCHEMAS_DIR: Final = REPO / "hubject_connector" / "bus" / "schemas"
#: The base URI of the contract's schemas (their ``$id``s).
CONTRACT_BASE: Final = "https://hubject-connector.invalid/schemas/bus/"


def _retrieve(uri: str) -> Resource[Any]:
    # The document's relative refs resolve to files; the contract's schemas refer to each
    # other by their $id. Both are read from the repository, never fetched.
    if uri.startswith("file://"):
        path = Path(uri.removeprefix("file://"))
    elif uri.startswith(CONTRACT_BASE):
        path = SCHEMAS_DIR / uri.removeprefix(CONTRACT_BASE)
    else:
        raise NoSuchResource(uri)
    contents = json.loads(path.read_text(encoding="utf-8"))
    return Resource.from_contents(contents, default_specification=DRAFT202012)


def answer_validator(document: dict[str, Any], schema: str) -> OAS31Validator:
    """A validator of the document's ``components/schemas/<schema>``, refs resolved."""
    base = OPENAPI.as_uri()
    registry: Registry[Any] = Registry(retrieve=_retrieve).with_resource(  # type: ignore[call-arg]
        base, Resource.from_contents(document, default_specification=DRAFT202012))
    return OAS31Validator({"$ref": f"{base}#/components/schemas/{schema}"}, registry=registry)


async def test_the_running_servers_answer_as_documented(
    document: dict[str, Any], dev_pki: DevPki, tmp_path: Path, simulator: Simulator,
    backend: Backend,
) -> None:
    config = config_of(tmp_path, settings(dev_pki, tmp_path, hubject_url=simulator.url,
                                          webhook_url=backend.url))
    async with Service(config) as service, aiohttp.ClientSession() as session:
        bus_api = service.addresses()["bus_api"]
        assert bus_api is not None
        checks: list[tuple[str, Any]] = []

        async with session.get(service.ops_url + "/readyz") as response:
            checks.append(("Readiness", await response.json()))
        async with session.post(bus_api + "/v1/messages", data=b'{"specversion": "1.0"}',
                                headers={"Content-Type": "application/cloudevents+json"}
                                ) as response:
            assert response.status == 400
            refused = await response.json()
            checks.append(("Refused", refused))
        status = make_envelope(MessageType.EVSE_STATUS,
                               {"evse_id": "DE*ABC*E1234*1", "status": "Available"})
        async with session.post(bus_api + "/v1/messages", data=status.to_bytes(),
                                headers={"Content-Type": "application/cloudevents+json"}
                                ) as response:
            assert response.status == 202
            checks.append(("Accepted", await response.json()))
        async with session.get(bus_api + "/v1/dead-letters") as response:
            page = await response.json()
            checks.append(("DeadLetterPage", page))
        letter_id = refused["dead_letter_id"]
        async with session.get(f"{bus_api}/v1/dead-letters/{letter_id}") as response:
            checks.append(("DeadLetter", await response.json()))
        async with session.get(bus_api + "/v1/dead-letters/no-such-letter") as response:
            assert response.status == 404
            checks.append(("Error", await response.json()))
        async with session.get(bus_api + "/v1/results?after=0") as response:
            checks.append(("ResultPage", await response.json()))
        async with session.get(bus_api + "/v1/results?limit=0") as response:
            assert response.status == 400
            checks.append(("Error", await response.json()))

    assert page["dead_letters"], "the refused message is kept"
    for schema, answer in checks:
        errors = [e.message for e in answer_validator(document, schema).iter_errors(answer)]
        assert errors == [], (schema, answer)


def test_an_answer_unlike_the_document_is_caught(document: dict[str, Any]) -> None:
    # A control for the test above: its validators do refuse what the document rules out.
    validator = answer_validator(document, "DeadLetterPage")
    assert list(validator.iter_errors({"dead_letters": [{"id": 1}], "next": "0",
                                       "more": False}))
    assert list(validator.iter_errors({"dead_letters": [], "next": 3, "more": False}))
