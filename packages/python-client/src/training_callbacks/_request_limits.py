"""Generated from proto/request-limits.json by packages/proto/scripts/generate-request-limits.ts; do not edit.

What the sidecar accepts in BeginTraining's params (lengths in code points): the client keeps a job's
params within these limits before sending, so that the job still begins.
"""

from __future__ import annotations

import re
from typing import Final

#: Most params one job may have.
MAX_PARAMS: Final = 1000
#: Longest param key.
PARAM_KEY_MAX_LENGTH: Final = 250
#: Longest param value.
PARAM_VALUE_MAX_LENGTH: Final = 6000
#: A key too long: its start, this separator and this many hex digits of its SHA-256.
PARAM_KEY_DIGEST_SEPARATOR: Final = "_"
PARAM_KEY_DIGEST_HEX_DIGITS: Final = 8
#: The end of a value too long, ``{length}`` its length in code points.
PARAM_VALUE_CUT_SUFFIX: Final = "… (cut from {length} characters)"
#: Characters a param key must not contain.
PARAM_KEY_FORBIDDEN: Final = re.compile("[\u0000-\u001f\u007f-\u009f]")
#: Longest TrainerProcess.hostname.
HOSTNAME_MAX_LENGTH: Final = 255
#: Longest TrainerProcess.boot_id.
BOOT_ID_MAX_LENGTH: Final = 64
