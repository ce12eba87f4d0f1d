"""The operation table against the OpenAPI's paths."""

from __future__ import annotations

import pytest

from hubject_connector.oicp import messages
from hubject_connector.oicp.operations import OPERATIONS
from tests.unit.oicp_conformance.conftest import JSON, Spec

pytestmark = pytest.mark.spec


def test_table_paths_are_the_openapi_paths(spec: Spec) -> None:
    # The OpenAPI's paths are relative to its server URL, .../api/oicp, as the table's are.
    assert len(spec.paths) == 12
    assert sorted(op.path for op in OPERATIONS.values()) == sorted(spec.paths)


def test_every_path_is_one_json_post(spec: Spec) -> None:
    methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
    for op in OPERATIONS.values():
        assert set(spec.paths[op.path]) & methods == {"post"}, op.path
        post = spec.post(op)
        assert set(post["requestBody"]["content"]) == {JSON}, op.path
        assert set(post["responses"]["200"]["content"]) == {JSON}, op.path


def test_table_messages_name_the_openapi_schemas(spec: Spec) -> None:
    for op in OPERATIONS.values():
        request = spec.request_schema(op)
        refs = [o["$ref"] for o in request.get("oneOf", [request])]
        components = {ref.rsplit("/", 1)[1] for ref in refs}
        models = messages.request_classes(op)
        assert components == {m.OICP_NAME for m in models}, op.name  # type: ignore[attr-defined]
        answer = spec.response_schema(op)["$ref"].rsplit("/", 1)[1]
        assert messages.message_class(answer) is messages.response_class(op), op.name
