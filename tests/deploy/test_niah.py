"""test_niah.py: clients/niah against real rosa-servers on the demo model: with its adapter the
passkey is found at every depth, without it (--no-rosa, window 2) never; the heat-map is a valid
PNG whose cells have the colours of the recalls; the table lists every cell."""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "server"))
from srvtest import SRC, Server, run  # noqa: E402

NIAH = os.path.join(SRC, "clients", "niah", "niah.py")
sys.path.insert(0, os.path.dirname(NIAH))
import niah  # noqa: E402
from png import read_png  # noqa: E402


def niah_run(server, label, out):
    p = subprocess.run([sys.executable, NIAH, "run", "--url", f"http://127.0.0.1:{server.port}",
                        "--lengths", "1k,3k", "--depths", "0,50,100", "--label", label,
                        "--out", out], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return json.load(open(out))


def test_keys_and_scoring():
    import random
    rng = random.Random(3)
    keys = [niah.make_key(rng, False) for _ in range(200)]
    assert all(len(k) == 5 and all(a != b for a, b in zip(k, k[1:])) for k in keys)
    assert niah.answer_digits(" 47123. The") == "47123" and niah.answer_digits("\n\n") == ""
    assert niah.parse_len("128k") == 131072 and niah.fmt_len(131072) == "128k"


def test_demo_with_and_without_rosa():
    tmp = tempfile.mkdtemp(prefix="rosa-niah-")
    with_rosa, without = Server(), Server("--no-rosa")
    try:
        r = niah_run(with_rosa, "window 2 + ROSA", os.path.join(tmp, "rosa.json"))
        w = niah_run(without, "window 2 only", os.path.join(tmp, "window.json"))
    finally:
        with_rosa.stop()
        without.stop()
    assert len(r["cells"]) == 6 and all(c["recall"] == 1.0 for c in r["cells"]), r["cells"]
    assert all(c["recall"] == 0.0 for c in w["cells"]), w["cells"]
    for c in r["cells"]:  # lengths are prompt tokens (byte ids on the demo)
        assert abs(c["prompt_tokens"] - c["length"]) <= 8, c

    png = os.path.join(tmp, "rosa.png")
    for res, want, name in ((r, "green", "rosa"), (w, "red", "window")):
        path = os.path.join(tmp, name + ".json")
        p = subprocess.run([sys.executable, NIAH, "plot", path, png], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        width, height, rows = read_png(open(png, "rb").read())
        assert width == 70 + 56 * 2 + 20 and height == 44 + 26 * 3 + 50, (width, height)
        px = rows[44 + 3][3 * (70 + 3):3 * (70 + 3) + 3]  # a corner of the first cell
        red, green = px[0], px[1]
        assert (green > red) if want == "green" else (red > green), (res["label"], tuple(px))
    p = subprocess.run([sys.executable, NIAH, "table", os.path.join(tmp, "rosa.json"),
                        os.path.join(tmp, "window.json")], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0
    assert "| 50% | 100 | 100 |" in p.stdout and "| 50% | 0 | 0 |" in p.stdout, p.stdout


if __name__ == "__main__":
    run([test_keys_and_scoring, test_demo_with_and_without_rosa])
