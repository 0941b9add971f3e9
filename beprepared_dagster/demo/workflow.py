"""The bundled demo: a handful of real wallpapers, filtered, tagged and captioned by you.

`beprepared dev` (or `make demo`) shows it in `dagster dev`, with the labeling app on http://127.0.0.1:7860
(one tab per human stage); `python -m beprepared_dagster.demo.workflow` runs it headlessly and waits for
your labels there. The workspace is `$BEPREPARED_WORKSPACE` or `./workspace`.
"""

from pathlib import Path

from beprepared_dagster import (
    ConvertFormat,
    FilterBySize,
    HumanCaption,
    HumanFilter,
    HumanTag,
    Load,
    Save,
    SetCaption,
    Workspace,
)

IMAGES = Path(__file__).resolve().parent / "images"

with Workspace(name="demo") as workspace:
    (
        Load(IMAGES)
        >> FilterBySize(min_edge=512)
        >> HumanFilter
        >> ConvertFormat("JPEG")
        >> HumanTag(tags=[["nature", "animal", "flower"], ["water", "sand", "sky"]])
        >> SetCaption("ohwx wallpaper")
        >> HumanCaption
        >> Save
    )
    workspace.run()
