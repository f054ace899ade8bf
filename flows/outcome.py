"""How a concern flow ends: Failed when any step failed after its retries, else Completed."""

from prefect import get_run_logger
from prefect.states import Completed, Failed, State


def conclude(concern: str, booking_uid: str, steps: dict[str, State]) -> State:
    """Log each failed step with the booking and step name, and choose the run's final state."""
    failed = [name for name, state in steps.items() if not state.is_completed()]
    for name in failed:
        get_run_logger().error(
            "booking %s: %s step %r failed: %s", booking_uid, concern, name, steps[name].message
        )
    if failed:
        return Failed(
            message=f"{len(failed)} of {len(steps)} {concern} steps failed: " + ", ".join(failed)
        )
    return Completed(message=f"{len(steps)} {concern} steps completed")
