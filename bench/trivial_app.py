"""The baseline for `/map` latency: a trivial FastAPI JSON endpoint, nothing else."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

app = FastAPI()


@app.post("/map")
async def trivial(body: dict[str, Any]) -> dict[str, bool]:
    return {"ok": True}
