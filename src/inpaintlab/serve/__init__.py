"""`inpaintlab serve`: the model in a browser, and the HTTP API behind the page.

`app.py` is the Starlette app and the command, `engine.py` one request's work (through
`inpaintlab predict`'s inference code), `samples.py` the bundled sample photos, `static/` the
page. Nothing here imports torch.
"""
