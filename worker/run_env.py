"""The environment a worker gives its runs, read once per worker."""

import functools


@functools.cache
def settings_environment() -> dict[str, str]:
    """Prefect's settings as environment variables, as Prefect's job configuration gives them
    to each run (`BaseJobConfiguration._base_environment`). They do not change while a worker
    runs; Prefect serialised every setting again for each run (about 15 ms of CPU)."""
    from prefect.settings import get_current_settings

    return get_current_settings().to_environment_variables(exclude_unset=True)
