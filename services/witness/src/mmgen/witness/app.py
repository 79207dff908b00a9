"""HTTP edge of the witness: `POST /add-checkpoint` (C2SP tlog-witness) and its public key.

No bearer tokens: the protocol authenticates the checkpoint (its log signature), not the
caller, so any party may submit a log's heads; what the witness signs depends only on what it
verified. Refusals: 409 carries the latest cosigned size as `text/x.tlog.size` (the protocol's
body, which clients parse); the others are RFC 9457 problem+json with the protocol's status.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from mmgen.auditlog.witness_protocol import ADD_CHECKPOINT_PATH, SIZE_CONTENT_TYPE, format_size
from mmgen.platform import PlatformApp, ProblemSpec, ReadinessCheck
from mmgen.platform import create_app as platform_app
from mmgen.witness.domain import (
    CheckpointNotSignedError,
    ConflictError,
    ConsistencyProofError,
    RequestMalformedError,
    UnknownLogError,
)
from mmgen.witness.service import Witness
from mmgen.witness.settings import WitnessSettings
from mmgen.witness.store import JsonFileWitnessStore

VERSION = "0.1.0"
PROBLEMS: dict[type[Exception], ProblemSpec] = {
    RequestMalformedError: ProblemSpec(400, "Not an add-checkpoint request", "witness-bad-request"),
    CheckpointNotSignedError: ProblemSpec(
        403, "Checkpoint not signed by the log's key", "witness-checkpoint-not-signed"
    ),
    UnknownLogError: ProblemSpec(404, "Unknown log", "witness-unknown-log"),
    ConsistencyProofError: ProblemSpec(
        422, "Not consistent with the cosigned checkpoint", "witness-inconsistent"
    ),
}


def _witness(request: Request) -> Witness:
    witness: Witness = request.app.state.witness
    return witness


def build_router() -> APIRouter:
    """The routes, over the `Witness` the app's lifespan puts in `app.state.witness`."""
    router = APIRouter(tags=["witness"])

    @router.post(
        ADD_CHECKPOINT_PATH,
        name="witness_add_checkpoint",
        response_class=PlainTextResponse,
        responses={409: {"content": {SIZE_CONTENT_TYPE: {}}}},
    )
    async def add_checkpoint(request: Request) -> PlainTextResponse:
        """Body: `old <size>`, the consistency proof lines, an empty line, the signed
        checkpoint. 200: the cosignature line; 409: the latest cosigned size."""
        return PlainTextResponse(await _witness(request).add_checkpoint(await request.body()))

    @router.get("/public-key", name="witness_public_key", response_class=PlainTextResponse)
    async def public_key(request: Request) -> PlainTextResponse:
        """The witness's cosignature verifier key (pin it out of band, as the log's)."""
        return PlainTextResponse(_witness(request).verifier_key + "\n")

    return router


async def _conflict(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConflictError)
    # Exactly the protocol's type: Starlette would add "; charset=utf-8" to a text/ media type.
    return Response(
        format_size(exc.latest_size).encode("ascii"),
        status_code=409,
        headers={"Content-Type": SIZE_CONTENT_TYPE},
    )


def build_app(settings: WitnessSettings, *, witness: Witness | None = None) -> PlatformApp:
    """The witness app; without `witness`, one on the settings' key, logs and store folder,
    whose store is opened (and locked) when the app starts and closed when it stops."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if witness is not None:
            app.state.witness = witness
            yield
            return
        store = JsonFileWitnessStore(settings.store_path())
        try:
            app.state.witness = Witness(settings.signer(), settings.log_verifiers(), store)
            yield
        finally:
            store.close()

    app = platform_app(
        settings,
        title="mmgen witness",
        version=VERSION,
        routers=[build_router()],
        lifespan=lifespan,
        problems=PROBLEMS,
        description="C2SP tlog-witness: cosigns the audit log's checkpoints.",
    )

    async def store_ready() -> bool | str:
        current: Witness | None = getattr(app.state, "witness", None)
        if current is None:
            return False
        sizes = current.latest_sizes()
        return ", ".join(f"{o}: {n}" for o, n in sorted(sizes.items())) or "nothing cosigned yet"

    app.add_readiness_check(ReadinessCheck("witness-store", store_ready))
    app.add_exception_handler(ConflictError, _conflict)
    return app


def create_app() -> PlatformApp:
    """The app `mmgen up` and uvicorn run (`mmgen.services` entry point)."""
    return build_app(WitnessSettings())
