"""Scheduled retraining: `python pipelines/train.py [CONFIG] [--force-promote]`.

Thin wiring over the library, for schedulers that run scripts rather than console
commands; it behaves exactly like `leadml train --config CONFIG`.
"""

import sys
from pathlib import Path

from leadml.cli import app

if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        args = [str(Path(__file__).parent / "configs" / "sample.yaml"), *args]
    app(["train", "--config", *args], prog_name="pipelines/train.py")
