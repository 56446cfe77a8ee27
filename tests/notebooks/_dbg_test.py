import datetime
from tests.notebooks import nbrun
from tests.notebooks.test_execute import full_form

def test_dbg(kernel_env, media):
    import os
    nb = nbrun.read(os.environ.get("NB", "lipsync_original.ipynb"))
    form = full_form(media)
    if "codeformer" in os.environ.get("NB", ""):
        form["detector"] = os.environ.get("DET", "retinaface")
    if "simple" in os.environ.get("NB", ""):
        form = dict(video=str(media.face), start="0.5", end="1.5", audio=str(media.short_speech))
    nbrun.set_form_params(nb, **form)
    try:
        nbrun.execute(nb, kernel_env, allow_errors=True)
    finally:
        for c in nb.cells:
            ex = c.metadata.get("execution", {})
            if ex:
                t0 = datetime.datetime.fromisoformat(ex["iopub.execute_input"].replace("Z", ""))
                t1 = datetime.datetime.fromisoformat(ex["shell.execute_reply"].replace("Z", ""))
                print("=====", c.get("id"), (t1 - t0).total_seconds())
            for o in c.get("outputs", []):
                if o.output_type == "stream": print(o.name, o.text[-3000:])
                elif o.output_type == "error": print("ERROR", o.ename, o.evalue, "\n".join(o.traceback)[-3000:])
                else: print(o.output_type, list(o.data.keys()), str(o.data.get("text/plain", ""))[:200])
