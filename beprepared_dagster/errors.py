"""Exceptions a user sees. Each message names the stage, parameter or file at fault."""


class BeprepareError(Exception):
    """Base of every error raised on purpose by beprepared."""


class WorkflowError(BeprepareError):
    """The workflow graph or a node parameter is invalid (raised at load time)."""


class StoreError(BeprepareError):
    """The workspace store could not be read or written (e.g. the DuckDB lock was held too long)."""


class BadImage(BeprepareError):
    """An input file is not a usable image (empty, truncated, not an image, too large).

    Deterministic for given bytes, so the rejection is cached and the run goes on with the other images.
    """


class RunFailed(BeprepareError):
    """A headless run of a workflow failed."""


class StageFailed(BeprepareError):
    """A node decided the whole stage must fail (e.g. `Fail`); not isolated per image, it fails the run."""
