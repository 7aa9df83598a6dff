"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis, over WSGI).

Every operation in ``web/openapi.json`` gets generated requests (valid and invalid parameters and
bodies, sent with a valid token of alice) against the real app, Redis and store; no answer may be a
server error, and every answer must match the document (status code, content type, body schema).
A few stored results (with real image files) give the id-taking endpoints something to find.
The example count is bounded so the run stays well under a minute and a half on a CI core.
"""
from __future__ import annotations

import json
import os
from typing import Any

import hypothesis
import pytest
import schemathesis
from flask import Flask
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from tests.web.test_api import add_result, write_image
from web.api import OPENAPI_DOCUMENT
from web.services import Services

# Examples per operation (both valid and invalid ones); FUZZ_EXAMPLES=500 for a long run by hand.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def api_schema(app: Flask, svc: Services, auth: dict[str, dict[str, str]]) -> Any:
    ids = []
    for channel, name in (("", "root.png"), ("finance", "fin.png"), ("sales", "sales.png")):
        write_image(svc.settings.shared_dir / channel / name)
        ids.append(add_result(svc, channel, name, text=f"{channel or 'root'} invoice 42").id)
    ids.append(add_result(svc, "", "broken.png", status="failed").id)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    schema.result_ids = ids  # type: ignore[attr-defined]
    return schema


# (method, path) of every operation, read from the document itself so none is left out.
OPERATIONS = [(method.upper(), path) for path, item in json.loads(OPENAPI_DOCUMENT.read_text())["paths"].items()
              for method in item if method in ("get", "post", "put", "patch", "delete")]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_api_answers_within_its_document(api_schema: Any, auth: dict[str, dict[str, str]], method: str,
                                         path: str) -> None:
    operation = api_schema[path][method]
    # Logging out revokes the token it is sent with: bob's, so alice's stays valid for the rest.
    token = auth["bob"] if path == "/api/v1/auth/logout" else auth["alice"]

    cases = st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in GenerationMode))
    ids = st.sampled_from([None, *api_schema.result_ids])

    @hypothesis.given(case=cases, result_id=ids)
    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck))
    def run(case: Any, result_id: str | None) -> None:
        if result_id is not None and "result_id" in (case.path_parameters or {}):
            case.path_parameters["result_id"] = result_id  # a stored result: own team's, another's, failed
        case.call_and_validate(headers={**(case.headers or {}), **token}, checks=CHECKS)

    run()
