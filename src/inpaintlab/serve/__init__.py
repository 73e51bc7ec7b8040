"""`inpaintlab serve`: the model in a browser, and the HTTP API behind the page.

`command.py` is the command, `app.py` the Starlette app, `engine.py` one request's work (through
`inpaintlab predict`'s inference code), `samples.py` the bundled sample photos, `static/` the
page. Nothing here imports torch.
"""
