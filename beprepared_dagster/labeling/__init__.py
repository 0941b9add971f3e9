"""The labeling app: one browser tab per human stage (HumanFilter, HumanTag, HumanCaption, HumanRank) of every
loaded workflow, served by Gradio, writing only the label journal.

| module       | what it does                                                                      |
|--------------|-----------------------------------------------------------------------------------|
| `queue`      | a stage's images (kept upstream, insertion order), latest labels, counts          |
| `values`     | checks and normalises the label values the browser sends                          |
| `rank`       | a HumanRank tab: comparisons in force, the fit, the next pairs, counters           |
| `display`    | display-size copies (long edge ≤ 1600 px; 960 for pairs), made ahead in background |
| `service`    | the handlers the browser calls (Gradio-free)                                      |
| `app`        | FastAPI + Gradio: the page, `/display/<objectid>`, login                          |
| `server`     | uvicorn on a socket bound with retry (a reload hands the port over)               |
| `launcher`   | starts it in `dagster dev`'s code server, or for a headless run                    |
| `watchdog`   | reloads the code location when the code server dies, so the app comes back        |
| `config`     | `BEPREPARED_LABELING*` settings; `urls`: links to a stage's tab                   |
| `static/`    | the client (`labeler.js`, `labeler.css`), served from the package                 |

Importing this package (or `launcher`, `urls`) does not import Gradio.
"""
