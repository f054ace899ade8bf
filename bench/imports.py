"""What importing each flow module costs a new interpreter (a plain flow-run start pays it).

    python -m bench.imports [--root PATH] [--repeat 5]

Each module is imported in a fresh `python -c`, `--repeat` times; the median CPU seconds of
the import are printed, and the modules it pulled in that a flow run may not need. `--root`
measures another checkout of the project (for a before/after comparison).
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from booking.settings import PROJECT_ROOT

MODULES = (
    "flows.post_commit",
    "flows.webhooks",
    "flows.integrations",
    "flows.scheduling",
    "flows.deliver_due_work",
    "flows.outbox_relay",
)
HEAVY = ("alembic", "jinja2", "pystache", "babel", "email_validator", "matplotlib")
PROBE = """
import json, sys, time
started = time.process_time()
import {module}
spent = time.process_time() - started
loaded = {{name.split(".")[0] for name in sys.modules}}
print(json.dumps({{"cpu": spent, "heavy": sorted(loaded & set({heavy}))}}))
"""


def measure(module: str, root: Path, repeat: int) -> tuple[float, list[str]]:
    samples, heavy = [], []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(module=module, heavy=list(HEAVY))],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()[-1]
        result = json.loads(out)
        samples.append(result["cpu"])
        heavy = result["heavy"]
    return statistics.median(samples), heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'module':<26} {'import CPU s':>12}  heavy libraries loaded")
    for module in MODULES:
        cpu, heavy = measure(module, args.root, args.repeat)
        print(f"{module:<26} {cpu:>12.2f}  {', '.join(heavy) or '-'}")


if __name__ == "__main__":
    main()
