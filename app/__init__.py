"""The Visage desktop app (PySide6). It imports `engine.api` and nothing else of the engine.

Qt-free models (`app.models`) hold the state; widgets (`app.widgets`) are views of them;
`engine_bridge` owns the engine's live runner and turns its callbacks into queued Qt signals.
"""
