"""`intima serve`: settings from flags and environment, bundle verified before the port opens."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvicorn

from serve.app import create_app
from serve.bundle import BundleError, load_bundle
from serve.runtime import DeviceUnavailable, make_session, model_file_for
from serve.settings import Settings


def settings_from_args(ns: argparse.Namespace) -> Settings:
    overrides = {
        key: value
        for key, value in {
            "host": ns.host,
            "port": ns.port,
            "bundle": Path(ns.bundle) if ns.bundle else None,
            "threads": ns.threads,
            "device": ns.device,
            "api_keys": ns.api_key,
        }.items()
        if value is not None
    }
    return Settings(**overrides)


def run_server(ns: argparse.Namespace) -> int:
    logging.basicConfig(level=ns.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from_args(ns)
    try:
        bundle = load_bundle(settings.bundle)  # fail fast, before binding the port
        if settings.device == "cuda":  # say why before binding the port, not in the first request
            make_session(str(bundle.file(model_file_for(bundle, "cuda"))), "cuda", settings.threads)
    except (BundleError, DeviceUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"serving {bundle.name} {bundle.version} from {bundle.path} on http://{settings.host}:{settings.port}",
        flush=True,
    )
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=ns.log_level.lower(), access_log=False)
    return 0
