"""``python -m laser_core.cli`` (what ``accelerate launch -m`` and ``torchrun -m`` run)."""

from laser_core.cli.main import main

raise SystemExit(main())
