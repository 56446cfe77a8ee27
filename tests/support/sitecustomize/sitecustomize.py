"""Start-up hook for the tests' child processes: reroutes Google Drive to the fake Drive when the test asks.

Python imports ``sitecustomize`` at start-up from ``sys.path``; :func:`tests.support.google_route.route_drive`
puts this folder on a child's ``PYTHONPATH`` and sets ``LIPSYNC_TEST_GDRIVE`` to the fake's URL. Without that
variable this does nothing. It loads ``google_route`` by its file path, so the child need not have the
repository on ``sys.path``.
"""
import os

if os.environ.get("LIPSYNC_TEST_GDRIVE"):
    import importlib.util
    from pathlib import Path

    _spec = importlib.util.spec_from_file_location("_lipsync_google_route",
                                                   Path(__file__).resolve().parents[1] / "google_route.py")
    assert _spec is not None and _spec.loader is not None
    _route = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_route)
    _route.reroute(os.environ["LIPSYNC_TEST_GDRIVE"])
