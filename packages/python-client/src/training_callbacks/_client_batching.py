"""Generated from proto/client-batching.json by packages/proto/scripts/generate-client-batching.ts; do not edit."""

from __future__ import annotations

from typing import Final

#: The default interval at which the client sends the batch rows a trainer reported per step, in seconds.
FLUSH_INTERVAL_SECONDS: Final = 0.2
