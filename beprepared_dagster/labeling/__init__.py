"""The labeling app: one browser tab per human stage (HumanFilter, HumanTag, HumanCaption) of every loaded
workflow, served by Gradio, writing only the label journal.

| module       | what it does                                                                      |
|--------------|-----------------------------------------------------------------------------------|
| `queue`      | a stage's images (kept upstream, insertion order), latest labels, counts          |
| `values`     | checks and normalises the label values the browser sends                          |
| `display`    | display-size copies (long edge ≤ 1600 px), cached under `cache/display/`          |
| `service`    | the handlers the browser calls (Gradio-free)                                      |
| `app`        | FastAPI + Gradio: the page, `/display/<objectid>`, login                          |
| `server`     | uvicorn on a socket bound with retry (a reload hands the port over)               |
| `launcher`   | starts it in `dagster dev`'s code server, or for a headless run                    |
| `config`     | `BEPREPARED_LABELING*` settings; `urls`: links to a stage's tab                   |
| `static/`    | the client (`labeler.js`, `labeler.css`), served from the package                 |

Importing this package (or `launcher`, `urls`) does not import Gradio.
"""
