"""docs/asyncapi.yaml: a valid AsyncAPI 3.0 document whose every $ref resolves.

The document is validated against the official AsyncAPI 3.0.0 JSON Schema. No PyPI package
ships it; the npm package ``@asyncapi/specs`` does, so the Makefile's install step fetches
it (pinned, ``ASYNCAPI_SPECS_VERSION``) into the virtualenv as ``asyncapi-3.0.0.json``. The
test fails when that file is missing, and is skipped only outside CI on a machine without
npm.

The official schema cannot see what lies behind the payloads' ``$ref``s to the contract's
schema files, nor the spec's prose rules (an operation's messages are a subset of its
channel's), so the structural checks below stay: required fields, the fields each object
may have, the references an operation must make, and the AMQP and HTTP bindings used.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from hubject_connector.bus.contract import MESSAGE_SPECS, MessageType
from tests.unit.bus_contract.documents import ASYNCAPI
from tests.validation import innermost_errors

# AsyncAPI 3.0.0: the fixed fields of each object (any object also takes "x-..." fields).
ROOT = {"asyncapi", "id", "info", "servers", "defaultContentType", "channels", "operations",
        "components"}
INFO = {"title", "version", "description", "termsOfService", "contact", "license", "tags",
        "externalDocs"}
SERVER = {"host", "protocol", "protocolVersion", "pathname", "description", "title",
          "summary", "variables", "security", "tags", "externalDocs", "bindings"}
CHANNEL = {"address", "messages", "title", "summary", "description", "servers", "parameters",
           "tags", "externalDocs", "bindings"}
OPERATION = {"action", "channel", "title", "summary", "description", "security", "tags",
             "externalDocs", "bindings", "traits", "messages", "reply"}
REPLY = {"address", "channel", "messages"}
MESSAGE = {"headers", "payload", "correlationId", "contentType", "name", "title", "summary",
           "description", "tags", "externalDocs", "bindings", "examples", "traits"}
COMPONENTS = {"schemas", "servers", "channels", "operations", "messages", "securitySchemes",
              "serverVariables", "parameters", "correlationIds", "replies", "replyAddresses",
              "externalDocs", "tags", "operationTraits", "messageTraits", "serverBindings",
              "channelBindings", "operationBindings", "messageBindings"}
MULTI_FORMAT_SCHEMA = {"schemaFormat", "schema"}
RUNTIME_EXPRESSION = re.compile(r"^\$message\.(header|payload)#(/(([^/~])|(~[01]))*)*")
AMQP_CHANNEL = {"is", "exchange", "queue", "bindingVersion"}
AMQP_EXCHANGE = {"name", "type", "durable", "autoDelete", "vhost"}
AMQP_OPERATION = {"expiration", "userId", "cc", "priority", "deliveryMode", "mandatory", "bcc",
                  "timestamp", "ack", "bindingVersion"}
AMQP_MESSAGE = {"contentEncoding", "messageType", "bindingVersion"}
HTTP_OPERATION = {"method", "query", "bindingVersion"}
HTTP_METHODS = {"GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE"}


#: Where the Makefile's install step puts the official schema (ASYNCAPI_SCHEMA there).
OFFICIAL_SCHEMA = Path(sys.prefix) / "asyncapi-3.0.0.json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """docs/asyncapi.yaml, parsed."""
    loaded = yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def official() -> Validator:
    """A validator of the official AsyncAPI 3.0.0 JSON Schema, offline."""
    if not OFFICIAL_SCHEMA.is_file():
        if not os.environ.get("CI") and shutil.which("npm") is None:
            pytest.skip(f"{OFFICIAL_SCHEMA} is missing and npm is not installed to fetch it")
        pytest.fail(
            f"{OFFICIAL_SCHEMA} is missing: the official AsyncAPI 3.0.0 JSON Schema, which the "
            "Makefile's install step fetches with npm (@asyncapi/specs). Run "
            "`make -B .venv/.installed`, or by hand: `cd .venv && npm pack "
            "@asyncapi/specs@<ASYNCAPI_SPECS_VERSION from the Makefile> && tar -xzOf "
            "asyncapi-specs-*.tgz package/schemas/3.0.0.json > asyncapi-3.0.0.json`"
        )
    schema = json.loads(OFFICIAL_SCHEMA.read_text(encoding="utf-8"))
    assert schema["$id"] == "http://asyncapi.com/definitions/3.0.0/asyncapi.json"
    # The file bundles each definition under "definitions", keyed by its own $id, and
    # refers to them by that $id: register them so that every $ref resolves from the file.
    # A registry given to the validator never downloads: an unbundled $ref would fail.
    bundled = [
        (uri, Resource.from_contents(definition, default_specification=DRAFT7))
        for uri, definition in schema["definitions"].items()
    ]
    registry: Registry[Any] = Registry().with_resources(bundled)
    cls = validator_for(schema)
    cls.check_schema(schema)
    validator: Validator = cls(schema, registry=registry.crawl())
    return validator


def test_the_document_is_valid_by_the_official_asyncapi_3_0_0_schema(
    official: Validator, document: dict[str, Any]
) -> None:
    assert innermost_errors(official, document) == []


def test_the_official_schema_does_refuse_a_broken_document(
    official: Validator, document: dict[str, Any]
) -> None:
    # Guards the test above against a validator that accepts anything (an unresolved
    # bundle, the wrong draft): each break is one the structural checks also look for.
    no_version = copy.deepcopy(document)
    del no_version["info"]["version"]
    bad_exchange = copy.deepcopy(document)
    amqp = next(
        c["bindings"]["amqp"] for c in bad_exchange["channels"].values()
        if "amqp" in c.get("bindings", {})
    )
    amqp["exchange"]["type"] = "round-robin"
    bad_action = copy.deepcopy(document)
    next(iter(bad_action["operations"].values()))["action"] = "publish"  # AsyncAPI 2 verb
    for broken in (no_version, bad_exchange, bad_action):
        assert not official.is_valid(broken)


def fields_ok(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    """``obj`` has only the fixed fields ``allowed`` and extensions."""
    unknown = {k for k in obj if k not in allowed and not k.startswith("x-")}
    assert not unknown, f"{where}: fields not in AsyncAPI 3.0: {sorted(unknown)}"


def is_ref(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"$ref"} and isinstance(
        value["$ref"], str
    )


def deref(document: Mapping[str, Any], node: Any) -> Any:
    """An internal Reference Object's target (the node itself if it is not one)."""
    if not is_ref(node):
        return node
    target: Any = document
    ref = node["$ref"]
    assert ref.startswith("#/"), ref
    for part in ref[2:].split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target


def all_refs(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield path, value
            else:
                yield from all_refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from all_refs(value, f"{path}/{i}")


def resolve(document: Mapping[str, Any], base: Path, ref: str) -> Any:
    """A $ref's target: a JSON pointer in ``document`` or a file relative to ``base``."""
    location, _, fragment = ref.partition("#")
    target: Any = document
    if location:
        path = (base / location).resolve()
        assert path.is_file(), f"{ref}: no such file"
        target = json.loads(path.read_text(encoding="utf-8"))
    for part in [p for p in fragment.split("/") if p]:
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target


def test_root_and_info(document: dict[str, Any]) -> None:
    fields_ok(document, ROOT, "root")
    assert document["asyncapi"] == "3.0.0"
    fields_ok(document["info"], INFO, "info")
    for field in ("title", "version"):
        assert isinstance(document["info"][field], str)
        assert document["info"][field]
    fields_ok(document["components"], COMPONENTS, "components")


def test_servers(document: dict[str, Any]) -> None:
    assert document["servers"]
    for name, server in document["servers"].items():
        fields_ok(server, SERVER, f"servers.{name}")
        for field in ("host", "protocol"):
            assert isinstance(server[field], str)
            assert server[field]


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    found = list(all_refs(document))
    assert len(found) > 100
    for path, ref in found:
        try:
            target = resolve(document, ASYNCAPI.parent, ref)
        except (KeyError, IndexError, TypeError) as exc:
            raise AssertionError(f"{path}: $ref {ref} does not resolve") from exc
        assert target is not None, f"{path}: $ref {ref}"


def test_channels(document: dict[str, Any]) -> None:
    for name, channel in document["channels"].items():
        fields_ok(channel, CHANNEL, f"channels.{name}")
        assert channel.get("address") is None or isinstance(channel["address"], str)
        assert channel["messages"], name
        for message in channel["messages"].values():
            assert is_ref(message) or isinstance(message, Mapping)
        for server in channel.get("servers", []):
            assert is_ref(server), name
            assert server["$ref"].startswith("#/servers/"), name
        amqp = channel.get("bindings", {}).get("amqp")
        if amqp is not None:
            fields_ok(amqp, AMQP_CHANNEL, f"channels.{name}.bindings.amqp")
            assert amqp["bindingVersion"] == "0.3.0"
            if amqp.get("is", "routingKey") == "routingKey":
                assert "exchange" in amqp, name
                assert "queue" not in amqp, name
                fields_ok(amqp["exchange"], AMQP_EXCHANGE, f"channels.{name}.exchange")
                assert amqp["exchange"]["type"] in {"topic", "direct", "fanout", "default",
                                                    "headers"}
            else:
                assert amqp["is"] == "queue", name
                assert "queue" in amqp, name
                assert "exchange" not in amqp, name


def test_operations_reference_their_channels_messages(document: dict[str, Any]) -> None:
    assert document["operations"]
    for name, operation in document["operations"].items():
        fields_ok(operation, OPERATION, f"operations.{name}")
        assert operation["action"] in {"send", "receive"}, name
        assert is_ref(operation["channel"]), name
        channel_ref = operation["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/"), name
        # Spec: an operation's messages MUST be a subset of its channel's messages, and
        # MUST be Reference Objects.
        for message in operation.get("messages", []):
            assert is_ref(message), name
            assert message["$ref"].startswith(channel_ref + "/messages/"), name
        reply = operation.get("reply")
        if reply is not None:
            fields_ok(reply, REPLY, f"operations.{name}.reply")
            reply_channel = reply["channel"]["$ref"]
            for message in reply["messages"]:
                assert message["$ref"].startswith(reply_channel + "/messages/"), name
            address = reply.get("address")
            if address is not None:
                assert RUNTIME_EXPRESSION.match(address["location"]), name
        amqp = operation.get("bindings", {}).get("amqp")
        if amqp is not None:
            fields_ok(amqp, AMQP_OPERATION, f"operations.{name}.bindings.amqp")
            assert amqp.get("deliveryMode", 2) in {1, 2}
        http = operation.get("bindings", {}).get("http")
        if http is not None:
            fields_ok(http, HTTP_OPERATION, f"operations.{name}.bindings.http")
            assert http["method"] in HTTP_METHODS


def test_messages_are_the_contracts_schemas(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    by_type = {}
    for name, message in messages.items():
        fields_ok(message, MESSAGE, f"components.messages.{name}")
        payload = message["payload"]
        fields_ok(payload, MULTI_FORMAT_SCHEMA, f"components.messages.{name}.payload")
        assert payload["schemaFormat"] == "application/schema+json;version=2020-12"
        correlation = deref(document, message.get("correlationId"))
        if correlation is not None:
            assert RUNTIME_EXPRESSION.match(correlation["location"]), name
        amqp = message.get("bindings", {}).get("amqp")
        if amqp is not None:
            fields_ok(amqp, AMQP_MESSAGE, f"components.messages.{name}.bindings.amqp")
            assert amqp["messageType"] == message["name"]
        by_type[message["name"]] = payload["schema"]["$ref"]
    assert set(by_type) == {str(t) for t in MessageType}
    for message_type, spec in MESSAGE_SPECS.items():
        assert by_type[str(message_type)].endswith("/hubject_connector/bus/schemas/"
                                                   + spec.schema_file)


def test_every_message_can_travel(document: dict[str, Any]) -> None:
    # Each message type is carried by at least one operation, as a message or a reply.
    carried = set()
    for operation in document["operations"].values():
        refs = [m["$ref"] for m in operation.get("messages", [])]
        refs += [m["$ref"] for m in operation.get("reply", {}).get("messages", [])]
        for ref in refs:
            carried.add(deref(document, deref(document, {"$ref": ref}))["name"])
    assert carried == {str(t) for t in MessageType}


def test_rabbitmq_channels_use_the_type_as_routing_key(document: dict[str, Any]) -> None:
    routed = {}
    for channel in document["channels"].values():
        if "amqp" in channel.get("bindings", {}):
            routed[channel["address"]] = channel
    for message_type, spec in MESSAGE_SPECS.items():
        if spec.queue is None:
            assert str(message_type) not in routed
            continue
        channel = routed[str(message_type)]
        assert channel["bindings"]["amqp"]["exchange"]["name"] == "hubject-connector"
        assert f"`hubject-connector.{spec.queue}`" in channel["description"]
