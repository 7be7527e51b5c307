"""``python -m reidkit`` (also for ``torchrun -m reidkit run ...``)."""
import sys

from reidkit.cli import main

sys.exit(main())
