"""The Celery app. Importing it is cheap: no TensorFlow, no database."""

from typing import Any

from celery import Celery

from service.config import Settings, get_settings

TRAIN_PACK = "initlab.train_pack"


def broker_options(settings: Settings) -> tuple[str, dict[str, Any]]:
    if settings.embedded_broker:
        folder = settings.broker_folder
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return "filesystem://", {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.1,
        }
    assert settings.broker_url is not None
    return settings.broker_url, {
        "visibility_timeout": settings.broker_visibility_timeout_seconds
    }


def create_celery(settings: Settings) -> Celery:
    url, transport_options = broker_options(settings)
    app = Celery("initlab", broker=url, include=["worker.tasks"])
    app.conf.update(
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.queue_name("cpu"),
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_enable_remote_control=not settings.embedded_broker,
        worker_send_task_events=False,
    )
    return app


app = create_celery(get_settings())
