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


def test_cli_works_where_only_serve_is_installed():
    """The serving image installs the `serve` package alone: the command line must still build and run,
    and training commands must say what is missing instead of failing with a traceback."""
    code = (
        "import sys\n"
        "sys.modules['train'] = None  # as if the package were not installed\n"
        "from serve.cli import build_parser, main\n"
        "build_parser().parse_args(['serve', '--port', '9'])\n"
        "sys.exit(main(['train', '--epochs', '1']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    assert "training extras" in out.stderr and "Traceback" not in out.stderr
