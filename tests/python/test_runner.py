"""The Python binding: imq.Runner quantizes in situ, generates, exposes the imatrix as NumPy
arrays, and saves exactly what `imq imatrix` + `imq quantize --pure` write from the same inputs.
    test_runner.py IMQ_BINARY TEXT"""
import os
import subprocess
import sys
import tempfile

import numpy as np

import imq

imq_bin, text = sys.argv[1], sys.argv[2]


def run(*args):
    subprocess.run([imq_bin, *args], check=True, capture_output=True)


with tempfile.TemporaryDirectory() as d:
    model = os.path.join(d, "m.gguf")
    run("synth", "-o", model, "--n-embd", "256", "--n-ff", "512", "--n-layer", "2", "--vocab", "512")
    im, q_cli, q_py = (os.path.join(d, n) for n in ("i.gguf", "q_cli.gguf", "q_py.gguf"))
    run("imatrix", "-m", model, "-f", text, "-c", "128", "--chunks", "4", "-o", im)
    run("quantize", "--pure", "--imatrix", im, model, q_cli, "Q4_K_M", "2")
    im_cli = open(im, "rb").read()

    r = imq.Runner(model=model, in_situ_quant="Q4K", calibration_file=text, calibration_ctx=128,
                   calibration_chunks=4, threads=2)
    assert sorted(os.listdir(d)) == ["i.gguf", "m.gguf", "q_cli.gguf"], os.listdir(d)
    out = r.generate("The model", max_tokens=8, temperature=0)
    assert isinstance(out, str) and out, repr(out)
    assert out == r.generate("The model", max_tokens=8, temperature=0)  # greedy is deterministic

    m = r.imatrix
    sums = m["blk.0.attn_q.weight"]["sums"]
    counts = m["blk.0.attn_q.weight"]["counts"]
    assert sums.dtype == np.float32 and sums.shape == (1, 256), sums.shape
    assert counts.shape == (1,) and counts[0] == 4 * 128, counts
    assert np.all(sums >= 0) and np.any(sums > 0)
    assert dict(r.tensor_types)["blk.0.attn_q.weight"] == "Q4_K"

    r.save_imatrix(im)
    assert open(im, "rb").read() == im_cli, "imatrix differs from imq imatrix's"
    r.save_gguf(q_py)
    assert open(q_py, "rb").read() == open(q_cli, "rb").read(), "model differs from imq quantize's"

    try:
        imq.Runner(model=os.path.join(d, "missing.gguf"))
        raise AssertionError("no error for a missing model")
    except RuntimeError as e:
        assert "missing.gguf" in str(e), e
print("python binding: OK")
