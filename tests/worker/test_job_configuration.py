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
