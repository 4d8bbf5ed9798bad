"""The OpenAPI document is the contract: schemathesis generates requests for every operation of `/api` (reads
and writes, with an officer key or an admin key) against a live server on the test database, and checks each
answer against the document — no server error, a documented status, a documented media type, a body that
validates against the documented schema, documented headers, schema-violating input refused with a 4xx and
schema-valid input not refused beyond what schemathesis.toml explains, auth enforced.

A brief run here (`make test`); the long one is `make fuzz` (bench/fuzz_api.py, --checks all, >= 20,000 cases).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hsettings
from schemathesis.config import SchemathesisConfig

from layers.accounts.auth import create_key
from layers.catalog.registry import LAYERS

ROOT = Path(__file__).resolve().parents[1]
CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance,
          schemathesis.checks.content_type_conformance, schemathesis.checks.response_headers_conformance,
          schemathesis.checks.response_schema_conformance, schemathesis.checks.negative_data_rejection,
          schemathesis.checks.positive_data_acceptance, schemathesis.checks.ignored_auth]


@pytest.fixture(scope="module")
def contract_db(settings: Any) -> str:
    """A database of its own with the sample: the fuzzed writes (creates, replaces, deletes with the right
    ETag) must not change the sample the other tests read."""
    from layers.store import db as dbmod
    from layers.store import pgcluster
    from sample_data.generate import load_sample

    name = f"{settings.db_name}_contract"
    s = settings.model_copy(update={"db_name": name})
    if s.database_url:
        s = s.model_copy(update={"database_url": s.dsn(name)})
    pgcluster.drop_database(s, name)
    pgcluster.ensure_database(s, name)
    dbmod.migrate(s)
    load_sample(s.dsn(), size="small", seed=7, force=True)
    return str(s.dsn())


@pytest.fixture(scope="module")
def contract_server(contract_db: str, settings: Any) -> Iterator[Any]:
    """A live server over its own app (an asyncpg pool belongs to one event loop)."""
    from conftest import LiveServer, free_port

    from api.app import create_app

    with LiveServer(create_app(settings=settings, dsn=contract_db), free_port()) as srv:
        yield srv


@pytest.fixture(scope="module")
def keys(contract_db: str) -> dict[str, str]:
    return {role: create_key(contract_db, f"contract-{role}-{uuid.uuid4().hex[:8]}", role)
            for role in ("officer", "admin")}


def _document() -> dict[str, Any]:
    """The document the app serves at /api (built from the registry; no database needed to build it).
    Loaded at collection time so each operation is a test of its own (schemathesis' lazy fixture loader does
    not work with pytest 9)."""
    from api.app import create_app

    return create_app().openapi()


schema = schemathesis.openapi.from_dict(_document(), config=SchemathesisConfig.from_path(ROOT / "schemathesis.toml"))


def _role(path: str, method: str) -> str:
    """Writes with the role the layer needs (admin_units: admin); reads alternate between the two keys."""
    for lid, layer in LAYERS.items():
        if path.startswith(f"/collections/{lid}/"):
            if method != "GET":
                return "officer" if "officer" in layer.write_roles else "admin"
            return "admin" if len(lid) % 2 else "officer"
    return "officer"


@schema.parametrize()
@hsettings(max_examples=3, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
           suppress_health_check=list(HealthCheck))
def test_contract(case: Any, contract_server: Any, keys: dict[str, str]) -> None:
    key = keys[_role(case.path, case.method)]
    case.call_and_validate(base_url=contract_server.url, headers={"Authorization": f"Bearer {key}"},
                           checks=CHECKS, timeout=30)


def test_document_has_a_schema_for_every_body(client: Any) -> None:
    """Every documented response body has a schema, and no operation documents FastAPI's unused 422."""
    doc = client.get("/api").json()
    empty, stray_422 = [], []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status, resp in op["responses"].items():
                for media, body in resp.get("content", {}).items():
                    if not body.get("schema"):
                        empty.append(f"{method.upper()} {path} {status} {media}")
                if status == "422" and method == "get":
                    stray_422.append(f"{method.upper()} {path}")
    assert not empty, empty
    assert not stray_422, stray_422
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    # problem responses are RFC 9457 problem+json
    items = doc["paths"]["/collections/parcels/items"]["get"]["responses"]
    assert set(items) >= {"200", "304", "400", "406", "503"}
    assert "application/problem+json" in items["400"]["content"]
    post = doc["paths"]["/collections/parcels/items"]["post"]["responses"]
    assert set(post) >= {"201", "400", "401", "403", "409", "413", "415", "422", "503"}
    assert post["201"]["headers"]["Location"]["required"] is True


def test_schema_documents_answer_their_media_type(client: Any) -> None:
    """`/queryables` and `/schema` are documented as application/schema+json: asking for it is not a 406."""
    for doc in ("queryables", "schema"):
        r = client.get(f"/collections/parcels/{doc}", headers={"Accept": "application/schema+json"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/schema+json")
        assert r.json()["properties"]


def test_405_allow_lists_every_method_of_the_path(client: Any) -> None:
    """Each method of /items is a route of its own; Allow names all of them (not only the first route's)."""
    r = client.put("/collections/parcels/items", content=b"{}")
    assert r.status_code == 405
    assert r.headers["content-type"].startswith("application/problem+json")
    allowed = {m.strip() for m in r.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed and "PUT" not in allowed
    r = client.post("/collections/parcels/items/1", content=b"{}")
    assert r.status_code == 405
    assert {"GET", "PUT", "PATCH", "DELETE"} <= {m.strip() for m in r.headers["allow"].split(",")}


@pytest.mark.parametrize("query", ["limit=1_0", "limit=%F0%9D%9F%99", "offset=%D9%A1%D9%A2", "offset=%201",
                                   "offset=9999999999999999999", "offset=1000000001"])
def test_integer_parameters_are_ascii_decimal_within_range(client: Any, query: str) -> None:
    """Documented as integers (offset up to its maximum): `1_0`, ' 1' and Unicode digits, which Python's int()
    reads, are refused like any other non-integer, naming the parameter (found by make fuzz: offset=𝟙𝟚 gave 200)."""
    r = client.get(f"/collections/parcels/items?{query}")
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert query.split("=")[0] in r.json()["detail"]
