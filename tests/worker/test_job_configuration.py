from prefect.workers.process import ProcessJobConfiguration

from worker.draining import DrainingWorker, JobConfiguration


def test_a_runs_environment_holds_the_workers_settings_read_once() -> None:
    first = JobConfiguration._base_environment()
    first["PREFECT_API_URL"] = "http://changed.invalid/api"  # one run's copy, changed

    assert JobConfiguration._base_environment() == ProcessJobConfiguration._base_environment()
    assert DrainingWorker.job_configuration is JobConfiguration
    # the same template Prefect's process worker makes for a pool
    assert (
        DrainingWorker.get_default_base_job_template()
        == DrainingWorker.__mro__[1].get_default_base_job_template()
    )


def test_a_forked_run_reads_prefects_settings_again_only_when_they_differ() -> None:
    from worker.forkserver import prefect_settings_env
    from worker.run_env import settings_environment

    forkserver = {"PATH": "/usr/bin", "PREFECT_HOME": "/srv/prefect", **settings_environment()}
    run = {**forkserver, "PREFECT__FLOW_RUN_ID": "0b5e", "BOOKING_DATABASE_URL": "sqlite://"}

    assert prefect_settings_env(run) == prefect_settings_env(forkserver)
    assert prefect_settings_env({**run, "PREFECT_API_URL": "http://other:4200/api"}) != (
        prefect_settings_env(forkserver)
    )


def test_the_engine_starter_gets_the_settings_every_run_gets() -> None:
    from prefect.settings import get_current_settings

    from worker.draining import _SettingsReadOnce

    once = _SettingsReadOnce()

    assert once.to_environment_variables(exclude_unset=True) == (
        get_current_settings().to_environment_variables(exclude_unset=True)
    )
    assert once.to_environment_variables() == get_current_settings().to_environment_variables()


def test_a_deployment_read_is_remembered_for_a_while_and_a_failure_not_at_all() -> None:
    import asyncio
    import uuid

    import pytest

    from worker.draining import remembered

    now, reads = [0.0], []
    known = uuid.uuid4()

    async def read(object_id: uuid.UUID) -> str:
        reads.append(object_id)
        if object_id != known:
            raise LookupError(object_id)
        return f"read {len(reads)}"

    read_deployment = remembered(read, 10.0, clock=lambda: now[0])

    async def scenario() -> list[str]:
        seen = [await read_deployment(known)]
        now[0] = 9.9
        seen.append(await read_deployment(known))  # remembered
        now[0] = 10.0
        seen.append(await read_deployment(known))  # read again
        missing = uuid.uuid4()
        for _ in range(2):
            with pytest.raises(LookupError):
                await read_deployment(missing)
        return seen

    assert asyncio.run(scenario()) == ["read 1", "read 1", "read 2"]
    assert len(reads) == 4  # both failed reads went to the server
