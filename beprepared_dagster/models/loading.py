"""Find a model on disk: a local folder, or a hub id in the Hugging Face cache (downloaded when allowed).

Offline (`HF_HUB_OFFLINE=1`) or without network, a missing model fails at once with the model id, the cache
folder looked in and the command that downloads it, never with a traceback from inside huggingface_hub.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from beprepared_dagster.errors import BeprepareError
from beprepared_dagster.models.api import ModelSpec, ResolvedModel

log = logging.getLogger(__name__)
_TRUE = {"1", "true", "yes", "on"}


class ModelNotFound(BeprepareError):
    """A model is not on disk and could not be downloaded, or a folder is not a model of its family."""


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def cache_dir() -> Path:
    """The Hugging Face hub cache folder, as huggingface_hub computes it now (env vars included)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def download_command(spec: ModelSpec) -> str:
    parts = ["hf download", spec.model]
    if spec.repo_type != "model":
        parts.append(f"--repo-type {spec.repo_type}")
    if spec.revision:
        parts.append(f"--revision {spec.revision}")
    for pattern in spec.allow_patterns or ():
        parts.append(f"--include '{pattern}'")
    return " ".join(parts)


def is_folder(model: str) -> bool:
    """A local folder: an existing path, or one written like a path (absolute, ./, ../, ~)."""
    return (
        Path(model).expanduser().exists()
        or model.startswith(("/", "./", "../", "~", "\\"))
        or (len(model) > 1 and model[1] == ":")
    )


def resolve(spec: ModelSpec) -> ResolvedModel:
    """The folder holding `spec.model`, checked for the family's files.

    Raises:
        ModelNotFound: with the model id, where it was looked for and how to get it.
    """
    if is_folder(spec.model):
        folder = Path(spec.model).expanduser().resolve()
        if not folder.is_dir():
            raise ModelNotFound(f"model folder {folder} does not exist (model={spec.model!r})")
        check_files(spec, folder)
        return ResolvedModel(spec, folder, None)
    folder = _from_hub(spec)
    check_files(spec, folder)
    commit = folder.name if folder.parent.name == "snapshots" else None
    return ResolvedModel(spec, folder, commit)


def check_files(spec: ModelSpec, folder: Path) -> None:
    missing = [pattern for pattern in spec.required_files if not any(folder.glob(pattern))]
    if missing:
        raise ModelNotFound(
            f"{folder} is not a {spec.family} model folder: missing {', '.join(missing)} "
            f"(model={spec.model!r})"
        )


def _from_hub(spec: ModelSpec) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    kwargs = {
        "repo_type": spec.repo_type,
        "revision": spec.revision,
        "cache_dir": cache_dir(),
        "allow_patterns": list(spec.allow_patterns) if spec.allow_patterns else None,
    }
    try:
        return Path(snapshot_download(spec.model, local_files_only=True, **kwargs))
    except Exception:  # not cached (or only partly): download below, unless offline
        pass
    if offline():
        raise ModelNotFound(
            _missing_message(spec, "HF_HUB_OFFLINE is set, so nothing is downloaded")
        ) from None
    log.warning(f"downloading {spec.model} ({spec.family}) into {cache_dir()}; this can take a while")
    try:
        return Path(snapshot_download(spec.model, **kwargs))
    except GatedRepoError:
        raise ModelNotFound(
            f"{spec.model} is gated: accept its license on huggingface.co, then log in with `hf auth login` "
            f"and run `{download_command(spec)}`"
        ) from None
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise ModelNotFound(
            f"{spec.model}{'@' + spec.revision if spec.revision else ''} was not found on the hub "
            f"({type(exc).__name__}); check model= and revision= (a private repo needs `hf auth login`)"
        ) from None
    except Exception as exc:
        raise ModelNotFound(
            _missing_message(spec, f"the download failed: {type(exc).__name__}: {exc}")
        ) from None


def _missing_message(spec: ModelSpec, why: str) -> str:
    revision = f" (revision {spec.revision})" if spec.revision else ""
    return (
        f"model {spec.model}{revision} is not in the Hugging Face cache {cache_dir()} and {why}. "
        f"Download it on a machine with network access: `{download_command(spec)}` "
        "(or pass model= a local folder)"
    )
