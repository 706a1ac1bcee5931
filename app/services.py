"""The only place pages get the backend from."""

from __future__ import annotations

import threading
from datetime import timedelta

import streamlit as st

from app import ast_lock
from backend.alerts import AlertSchedule
from backend.container import Services, SettingsError, build_services, load_settings

ast_lock.install()  # before any thread of ours parses beside Streamlit's script compiler (app/ast_lock.py)


@st.cache_resource(show_spinner="Connecting to the backends…")
def get_services() -> Services:
    """One Services bundle per server process (schema brought to head on first use), with the process's
    alert schedule (:class:`backend.alerts.AlertSchedule`)."""
    svc = build_services(load_settings(), migrate=True)
    m = svc.settings.monitoring
    AlertSchedule(lambda: svc.alerts, svc.clock.now, check_every=timedelta(minutes=m.check_every_minutes),
                  refresh_every=timedelta(hours=m.refresh_every_hours) if m.refresh_every_hours else None,
                  hold=lambda: _history_running(svc)).start()
    threading.Thread(target=_load_champion, args=(svc,), name="champion-preload", daemon=True).start()
    return svc


def _history_running(svc: Services) -> bool:
    progress = svc.book.history_progress()
    return progress is not None and progress.running


def _load_champion(svc: Services) -> None:
    """Load the champion in the background (~1-2 s: its trees and attribution paths), so the first decision
    opened after a start does not wait for it on the card. Nothing installed yet: the pages say so."""
    try:
        svc.models.get("champion")
    except Exception:  # noqa: BLE001, S110 - a missing or broken model is reported where it is used
        pass


def services_or_stop() -> Services:
    """Services, or a clear error on the page (naming the bad setting) and stop."""
    try:
        return get_services()
    except SettingsError as exc:
        st.error(f"Configuration error. {exc}", icon=":material/settings:")
    except Exception as exc:  # noqa: BLE001 - show one line instead of a traceback
        st.error(f"Cannot reach the backends: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}", icon=":material/cloud_off:")
    st.stop()
    raise RuntimeError("unreachable")
