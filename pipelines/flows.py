"""Prefect flows: thin orchestration over :mod:`pipelines.weekly`.

``weekly_monitoring`` runs one period (a week, or a backfill of many weeks) on Prefect's local
ephemeral API when no ``PREFECT_API_URL`` is set.  One task per site (coarse on purpose: Prefect's
per-task overhead dominates small tasks); tasks retry only on transient provider errors; all
store writes happen in the flow, after the tasks, and are idempotent on natural keys, so a retried
or re-run week duplicates nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# Safe defaults for Prefect's temporary local server, before Prefect is imported (STACK_NOTES).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

import pandas as pd  # noqa: E402
from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.cache_policies import NONE as NO_CACHE  # noqa: E402

from change_detection import DetectorParams  # noqa: E402
from sitewatch.config import BLIND_DAYS  # noqa: E402
from sitewatch.errors import TransientProviderError  # noqa: E402

from .imagery.base import ImageryProvider  # noqa: E402
from .monitoring import SiteResult  # noqa: E402
from .store import Store  # noqa: E402
from .weekly import (  # noqa: E402
    give_up_if_all_failed, left_out_warning, monitor_site, new_run_id, provider_failed, record_results, site_params,
    write_outputs,
)


def make_task_runner(kind: str = "threads", address: str | None = None, workers: int = 2):
    """``threads`` (default: Prefect's thread pool) or ``dask``: a Dask cluster at ``address``
    (``tcp://scheduler:8786``), or an in-process one with ``workers`` threads.  Use Dask with a real
    Prefect server (``PREFECT_API_URL``); with the temporary local API each worker *process* would
    start a server of its own, so the in-process cluster uses threads.
    """
    if kind == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=workers)
    if kind == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as exc:  # pragma: no cover - depends on the extra
            from sitewatch.errors import ConfigError

            raise ConfigError("the dask task runner needs `pip install -e '.[dask]'`") from exc
        if address:
            return DaskTaskRunner(address=address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": 1, "threads_per_worker": workers, "processes": False})
    raise ValueError(f"task runner must be threads or dask, not {kind!r}")


def _transient_only(task, task_run, state) -> bool:  # noqa: ANN001 - Prefect's callback signature
    try:
        state.result()
    except TransientProviderError:
        return True
    except Exception:  # noqa: BLE001 - anything else is not worth a retry
        return False
    return False


@task(retries=3, retry_delay_seconds=[2, 10, 30], retry_condition_fn=_transient_only, cache_policy=NO_CACHE,
      task_run_name="monitor-{site.site_id}")
def monitor_site_task(site, provider: ImageryProvider, since: str, end: str, params: DetectorParams,
                      state: bytes | None = None) -> SiteResult:
    return monitor_site(site, provider, since, end, params, state)


@flow(name="weekly-monitoring", log_prints=True)
def weekly_monitoring(
    sites: list, provider: ImageryProvider, start: str, end: str, out_dir: str, db_url: str,
    access: str = "restricted", params: DetectorParams = DetectorParams(),
    base: tuple[float, float] | None = None, blind_days: int = BLIND_DAYS, companions: dict[str, str] | None = None,
    registry: set[str] | None = None, language: str = "en",
) -> dict:
    """Monitor every site for [start, end]; write the store and the outputs; return the summary.
    ``registry``: the site ids of the whole registry, when ``sites`` are part of it; ``language``:
    of the map and the rangers' papers (:mod:`maps.language`)."""
    log = get_run_logger()
    store = Store(db_url)
    run_id = new_run_id()
    store.start_run(run_id, start, end, provider.name)
    store.upsert_sites(sites)
    sites = store.keyed(sites)  # a renamed site's digs keep their ids
    futures = [monitor_site_task.submit(s, provider, store.monitor_since(s.site_id, start), end,
                                        site_params(store, s.site_id, params), store.site_state(s.site_id))
               for s in sites]
    results: list[SiteResult] = []
    for i, (site, fut) in enumerate(zip(sites, futures), 1):
        res = fut.result(raise_on_failure=False)
        if isinstance(res, TransientProviderError):  # retried and still failing: the others go on
            res = provider_failed(site.site_id, res)
        elif isinstance(res, BaseException):  # anything else is a defect and stops the run, loudly
            raise res
        results.append(res)
        log.info("site %d/%d %s: %s, %d detection(s)", i, len(sites), site.site_id, res.status, len(res.detections))
    give_up_if_all_failed(results)
    counts = record_results(store, run_id, provider.name, results, pd.Timestamp(start), pd.Timestamp(end))
    outputs = write_outputs(store, sites, results, start, end, out_dir, access, run_id, base, blind_days, companions,
                            registry, language)
    summary = {**counts, "run_id": run_id, "sites": len(sites), "statuses": {r.site_id: r.status for r in results},
               "outputs": {k: str(v) for k, v in vars(outputs).items() if k != "kept_edited"},
               "kept_edited": [str(p) for p in outputs.kept_edited], "fetched": list(getattr(provider, "fetched", []))}
    store.finish_run(run_id, "completed", summary)
    log.info("run %s: %d new, %d updated detection(s)", run_id, counts["new"], counts["updated"])
    return summary


@flow(name="scheduled-monitoring", log_prints=True)
def scheduled_monitoring(config_path: str) -> list[dict]:
    """What the Monday deployment runs: catch up every pending week in order, then alert."""
    from sitewatch.config import load_config

    from .schedule import run_catch_up

    cfg = load_config(config_path)

    def runner(store, sites, provider, start, end, out, registry):
        return weekly_monitoring(sites, provider, start, end, str(out), store.url, cfg.access,
                                 blind_days=cfg.blind_days, companions=cfg.companions, registry=registry,
                                 language=cfg.language)

    records = run_catch_up(cfg, runner=runner)
    log = get_run_logger()
    log.info("caught up %d week(s): %s", len(records), ", ".join(r["week"] for r in records) or "none")
    if records and (last := Path(cfg.out) / records[-1]["week"] / "summary.json").is_file():
        for line in left_out_warning(json.loads(last.read_text(encoding="utf-8"))):  # as of the latest week
            log.warning(line.strip())
    return records


@flow(name="quick-look", log_prints=True)
def quick_look(config_path: str) -> dict:
    from sitewatch.config import load_config

    from .schedule import run_quick_look

    return run_quick_look(load_config(config_path))
