"""``python -m memora_lite``: the ``memora-lite`` command line (see :mod:`memora_lite.cli`)."""

from memora_lite.cli import main

raise SystemExit(main())
