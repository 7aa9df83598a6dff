"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis, over WSGI).

Every operation in ``web/openapi.json`` gets generated requests (valid and invalid parameters and
bodies, sent with a valid token of alice, an admin) against the real app, Redis and store; no answer may be a
server error, and every answer must match the document (status code, content type, body schema).
A few stored results (with real image files) give the id-taking endpoints something to find.
The example count is bounded (100 per operation, about 2,000 requests) so the run takes well under a
minute and a half on a CI core.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.settings import load_settings
from daemon.queue.redisconn import open_redis
from daemon.queue.streams import ensure_groups
from tests.web.conftest import PASSWORD, bearer
from tests.web.test_api import add_result, write_image
from web.api import OPENAPI_DOCUMENT
from web.app import create_app
from web.services import services

# Examples per operation (both valid and invalid ones); FUZZ_EXAMPLES=500 for a long run by hand.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class Target:
    schema: Any
    tokens: dict[str, dict[str, str]]
    result_ids: list[str]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One app (real embedded Redis and store) for every operation: the fixtures of conftest.py,
    built once for the module because an app with its users costs seconds."""
    # The upload part's encoding names image/* and application/zip: sent as raw bytes, like octet-stream.
    for media_type in ("application/zip", "image/*"):
        schemathesis.serializer.alias(media_type, "application/octet-stream")
    tmp = tmp_path_factory.mktemp("fuzz")
    base = load_settings(env={"TEAMOCR_SHARED_DIR": str(tmp / "share"), "TEAMOCR_DATA_DIR": str(tmp / "data")})
    base.shared_dir.mkdir(parents=True)
    settings = replace(base, teams=replace(base.teams, default_team="alpha", channels="finance=alpha, sales=beta"))
    handle = open_redis(None, settings.data_dir)
    ensure_groups(handle.client)
    app, _ = create_app(settings, redis_url=handle.url)
    svc = services(app)
    try:
        users = {
            "alice": svc.accounts.add_user("alice", PASSWORD, "alpha", admin=True),
            "bob": svc.accounts.add_user("bob", PASSWORD, "alpha"),
        }
        tokens = {name: bearer(svc.tokens.issue(user)["access_token"]) for name, user in users.items()}
        ids = []
        for channel, name in (("", "root.png"), ("finance", "fin.png"), ("sales", "sales.png")):
            write_image(settings.shared_dir / channel / name)
            ids.append(add_result(svc, channel, name, text=f"{channel or 'root'} invoice 42").id)
        ids.append(add_result(svc, "", "broken.png", status="failed").id)
        yield Target(schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app), tokens, ids)
    finally:
        svc.store.close()
        svc.accounts.close()
        handle.close()


# Sent with a member's token: as an admin, a valid example would start a real fine-tuning run (the
# admin side of these is tested in their own modules); logging out revokes the token it is sent with.
AS_MEMBER = {("POST", "/api/v1/training"), ("POST", "/api/v1/auth/logout")}


# (method, path) of every operation, read from the document itself so none is left out.
OPERATIONS = [
    (method.upper(), path)
    for path, item in json.loads(OPENAPI_DOCUMENT.read_text())["paths"].items()
    for method in item
    if method in ("get", "post", "put", "patch", "delete")
]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_api_answers_within_its_document(target: Target, method: str, path: str) -> None:
    operation = target.schema[path][method]
    token = target.tokens["bob" if (method, path) in AS_MEMBER else "alice"]
    cases = st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in GenerationMode))
    ids = st.sampled_from([None, *target.result_ids])

    @hypothesis.given(case=cases, result_id=ids)
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def run(case: Any, result_id: str | None) -> None:
        if result_id is not None and "result_id" in (case.path_parameters or {}):
            case.path_parameters["result_id"] = result_id  # a stored result: own team's, another's, failed
        case.call_and_validate(headers={**(case.headers or {}), **token}, checks=CHECKS)

    run()
