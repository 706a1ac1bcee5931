"""The only place pages get the backend from."""

from __future__ import annotations

import streamlit as st

from backend.config import SettingsError, load_settings
from backend.container import Services, build_services


@st.cache_resource(show_spinner="Connecting to the backends…")
def get_services() -> Services:
    """One Services bundle per server process (schema brought to head on first use)."""
    return build_services(load_settings(), migrate=True)


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
