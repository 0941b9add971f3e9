"""Links into the labeling app, for the Dagster UI (no Gradio import: the asset factory calls this)."""

from __future__ import annotations

import os
from urllib.parse import quote

from beprepared_dagster.labeling.config import (
    DEFAULT_HOST,
    HOST_ENV,
    URL_ENV,
    port_from_env,
    public_base_url,
)

TAB_PARAM = "tab"


def tab_key(workflow_name: str, stage_name: str) -> str:
    """The id of a human stage's tab: `<workflow>/<stage>` (both are slugs, so it needs no escaping)."""
    return f"{workflow_name}/{stage_name}"


def base_url() -> str:
    """The app's base URL from `BEPREPARED_LABELING_URL`, else host and port (ends with '/')."""
    host = os.environ.get(HOST_ENV, "").strip() or DEFAULT_HOST
    return public_base_url(host, port_from_env(), os.environ.get(URL_ENV, "").strip() or None)


def tab_url(workflow_name: str, stage_name: str) -> str:
    """The URL that opens the labeling app on this human stage's tab, e.g.
    `http://127.0.0.1:7860/?tab=dogs/human_filter`."""
    return f"{base_url()}?{TAB_PARAM}={quote(tab_key(workflow_name, stage_name), safe='/')}"
