"""Serving must not pull in torch or transformers (the Docker image does not have them)."""

import subprocess
import sys

SERVING_MODULES = [
    "serve",
    "serve.app",
    "serve.server",
    "serve.runtime",
    "serve.bundle",
    "serve.formatting",
    "serve.batcher",
    "serve.engine",
    "serve.settings",
    "serve.taxonomy",
    "serve.cli",
]


def test_serving_code_does_not_import_torch_or_transformers():
    code = (
        "import sys\n"
        f"for m in {SERVING_MODULES!r}:\n"
        "    __import__(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"serving imported: {out.stdout.strip()}"
