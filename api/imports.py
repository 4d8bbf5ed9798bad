"""File uploads: `POST /collections/{id}/imports` (multipart: `file`, optional `crs`, `field_map`, `layer`).

The uploaded file (zipped Shapefile, GeoPackage, GeoJSON, KML, CSV) goes through the CLI's importer
(`layers.ingest.importer.import_file`) with the layer's registration checks (drafts, area, commune, province,
overlaps, under the registration lock): all rows or none. 201 with the row report (count, warnings) when written;
otherwise a problem+json naming the first bad row and field, with every issue in `errors`. The upload is bounded
by `DATSO_REGISTRATION_MAX_UPLOAD_BYTES` (413) and written to a private temporary directory removed afterwards.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import Response

from api import openapi as oas
from api.auth import api_key_scheme, bearer_scheme, require_roles
from api.errors import Problem, request_lang
from api.params import check_unknown
from layers.accounts.principal import Principal
from layers.catalog.registry import LAYERS, Layer
from layers.ingest import registration
from layers.ingest.importer import ImportOptions, import_file
from layers.settings import ApiSettings

SUFFIXES = (".zip", ".gpkg", ".geojson", ".json", ".kml", ".csv")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
CHUNK = 1 << 20


def _too_large(limit: int) -> Problem:
    return Problem(413, f"Tệp gửi lên vượt quá {limit} byte", f"The uploaded file exceeds {limit} bytes",
                   field="file")


async def _save(request: Request, limit: int, folder: Path) -> tuple[Path, dict[str, str]]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise _too_large(limit)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "multipart/form-data":
        raise Problem(415, "Gửi tệp dạng multipart/form-data, trường 'file'",
                      "Send the file as multipart/form-data, field 'file'", field="file")
    try:
        form = await request.form(max_files=1, max_fields=10, max_part_size=limit)
    except Exception as exc:  # a malformed or oversized multipart body (starlette raises several types)
        if "exceed" in str(exc).lower() or "too large" in str(exc).lower():
            raise _too_large(limit) from None
        raise Problem(400, "Nội dung multipart không đọc được", "The multipart body cannot be read",
                      field="file") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise Problem(400, "Thiếu trường 'file' (tệp cần nhập)", "The 'file' field (the file to import) is missing",
                      field="file")
    name = _SAFE.sub("_", Path(upload.filename or "upload").name)[-100:] or "upload"
    if not name.lower().endswith(SUFFIXES):
        raise Problem(422, f"Tệp '{name}' không được hỗ trợ; dùng {', '.join(SUFFIXES)}",
                      f"File '{name}' is not supported; use {', '.join(SUFFIXES)}", field="file", value=name)
    path = folder / name
    size = 0
    with path.open("wb") as fh:
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            fh.write(chunk)
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    await form.close()
    return path, fields


def _issue(i: Any, lang: str) -> dict[str, Any]:
    return i.as_dict(lang)


def add_import_route(router: APIRouter, layer: Layer, settings: ApiSettings) -> None:
    auth = require_roles(layer.write_roles)
    path = f"/collections/{layer.id}/imports"

    async def upload(request: Request, who: Principal = Depends(auth)) -> Response:
        check_unknown(request, ("repair",))
        lang = request_lang(request)
        repair = request.query_params.get("repair", "false").lower() in ("1", "true", "yes")
        folder = Path(tempfile.mkdtemp(prefix="datso-upload-"))
        try:
            file, fields = await _save(request, settings.registration_max_upload_bytes, folder)
            unknown = sorted(set(fields) - {"crs", "field_map", "layer"})
            if unknown:
                raise Problem(400, f"Trường không được hỗ trợ: {', '.join(unknown)}",
                              f"Unknown form field(s): {', '.join(unknown)}", field=unknown[0])
            opts = ImportOptions(crs=fields.get("crs") or None, field_map=fields.get("field_map") or None,
                                 source_layer=fields.get("layer") or None, repair=repair, user=who.actor, principal=who, lang=lang,
                                 progress=False,
                                 policy=registration.Policy.from_settings(settings))
            result = await run_in_threadpool(import_file, file, layer.id, request.app.state.write_pool.dsn, opts)
            request.app.state.db.note_write()      # a read replica must replay it before this worker reads there
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        report = {"file": result.file, "rows_read": result.rows_read, "rows_written": result.rows_written,
                  "warnings": [_issue(i, lang) for i in result.warnings],
                  "notes": [vi if lang == "vi" else en for vi, en in result.notes]}
        if result.errors:
            first = result.errors[0]
            codes = {e.code for e in result.errors}
            status = 503 if "database" in codes else 409 if "overlap" in codes else \
                403 if codes & {"out_of_scope", "scope"} else 422
            more_vi = f" (và {len(result.errors) - 1} lỗi khác)" if len(result.errors) > 1 else ""
            more_en = f" (and {len(result.errors) - 1} more)" if len(result.errors) > 1 else ""
            if "geometry_invalid" in codes:      # the repair is offered, never applied silently
                more_vi += "; gửi lại với ?repair=true để chấp nhận hình học đã sửa (make_valid)"
                more_en += "; send again with ?repair=true to accept the repaired geometries (make_valid)"
            raise Problem(status, f"Không nhập tệp nào (tất cả hoặc không): {first.describe('vi')}{more_vi}",
                          f"Nothing imported (all or nothing): {first.describe('en')}{more_en}",
                          row=first.row, field=first.field, errors=[_issue(i, lang) for i in result.errors],
                          **{k: v for k, v in report.items() if k != "rows_written"})
        import orjson

        return Response(orjson.dumps(report), status_code=201, media_type="application/json")

    router.add_api_route(
        path, upload, methods=["POST"], status_code=201,
        summary=f"{layer.title_en}: import a file as drafts (all rows or none)",
        dependencies=[Depends(bearer_scheme), Depends(api_key_scheme)],
        openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"], "properties": {
                "file": {"type": "string", "format": "binary"}, "crs": {"type": "string"},
                "field_map": {"type": "string"}, "layer": {"type": "string"}}}}}}},
        responses={201: {"description": "Imported: the row report", "content": {"application/json": {
            "schema": {"type": "object"}}}}, **oas.problems(400, 401, 403, 409, 413, 415, 422, 503)})


async def expiry_loop(dsn: str, interval_s: int) -> None:
    """Expire registered features past their valid_to at start and every `interval_s` (0: never); a database
    that is down is retried at the next round."""
    if interval_s <= 0:
        return
    log = structlog.get_logger("datso.expiry")
    while True:
        try:
            counts = await asyncio.to_thread(registration.expire_all, dsn)
            if any(counts.values()):
                log.info("expired", **counts)
        except Exception as exc:    # the database down or busy: try again later, never end the app
            log.warning("expiry_failed", error=str(exc)[:200])
        await asyncio.sleep(interval_s)


def create_router(settings: ApiSettings) -> APIRouter:
    router = APIRouter()
    for layer in LAYERS.values():
        if layer.editable and layer.registration is not None:
            add_import_route(router, layer, settings)
    return router
