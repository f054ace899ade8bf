"""Where a flow run keeps results: nowhere, said without asking the server each run.

No flow or step here persists a result: every step is a side effect whose outcome is in the
bookings database and on its task run's state message. A flow that names no result storage
still makes Prefect ask the server for its default result storage (`GET /admin/storage`)
when the run starts and again for its steps, three requests a post-commit run. Naming the
local path Prefect falls back to when the server has no default (`PREFECT_LOCAL_STORAGE_PATH`)
asks nothing, and with `persist_result=False` nothing is written there.
"""

from pathlib import Path
from typing import Any

from prefect.settings import get_current_settings

NO_RESULTS: dict[str, Any] = {
    "persist_result": False,
    "result_storage": Path(get_current_settings().results.local_storage_path),
}
