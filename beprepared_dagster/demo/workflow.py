"""The bundled demo: a handful of real wallpapers through the seed workflow.

`beprepared dev` (or `make demo`) shows it in `dagster dev`; `python -m beprepared_dagster.demo.workflow`
runs it headlessly. The workspace is `$BEPREPARED_WORKSPACE` or `./workspace`.
"""

from pathlib import Path

from beprepared_dagster import ConvertFormat, FilterBySize, Load, Save, SetCaption, Workspace

IMAGES = Path(__file__).resolve().parent / "images"

with Workspace(name="demo") as workspace:
    (
        Load(IMAGES)
        >> FilterBySize(min_edge=512)
        >> ConvertFormat("JPEG")
        >> SetCaption("ohwx wallpaper")
        >> Save
    )
    workspace.run()
