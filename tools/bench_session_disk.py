"""bench_session_disk.py: what a --session-dir save and restore cost the other streams.

Starts rosa-server (ROSA_SERVER, default build/server/rosa-server) on 127.0.0.1 with a model
(default ../shared/golden/tiny-base-full/model) and --max-sessions 1, builds one session of N
random prompt tokens, runs a long stream, evicts the session to disk (a save) and continues it
(a restore), and prints the file size, the save/restore seconds from /metrics and the largest
gap between the stream's tokens before, during the save and during the restore.
Usage: python3 tools/bench_session_disk.py [N] [MODEL_DIR]"""
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "server"))
from srvtest import SRC, Server  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
MODEL = sys.argv[2] if len(sys.argv) > 2 else os.path.join(SRC, "..", "shared", "golden",
                                                            "tiny-base-full", "model")
d = tempfile.mkdtemp(prefix="rosa-bench-sessdir-")
s = Server("--model", MODEL, "--session-dir", d, "--max-sessions", "1", timeout=60)
try:
    r = random.Random(1)
    big = [r.randrange(3, 500) for _ in range(N)]
    t0 = time.time()
    st, res = s.request("POST", "/v1/completions", {"prompt": big, "max_tokens": 1,
                                                     "temperature": 0, "session_id": "big",
                                                     "return_token_ids": True}, timeout=600)[:2]
    g = json.loads(res)["choices"][0]["token_ids"]
    print("prefill of %d tokens: %.2f s" % (N, time.time() - t0))
    gaps, stop = [], []

    def streamer():
        c = s.conn(600)
        c.request("POST", "/v1/completions",
                  body=json.dumps({"prompt": [5, 6, 7], "max_tokens": 30000, "ignore_eos": True,
                                   "stream": True}), headers={"Content-Type": "application/json"})
        resp = c.getresponse()
        last = time.time()
        while not stop:
            line = resp.fp.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                now = time.time()
                gaps.append((now, now - last))
                last = now
        c.close()

    th = threading.Thread(target=streamer, daemon=True)
    th.start()
    time.sleep(1.0)
    t1 = time.time()
    s.post("/v1/completions", {"prompt": [9, 9, 9], "max_tokens": 1, "session_id": "small"})
    while (s.metric("rosa_session_saves_total") or 0) < 1:
        time.sleep(0.005)
    t2 = time.time()
    size = s.metric("rosa_session_disk_bytes")
    time.sleep(0.5)
    t3 = time.time()
    s.post("/v1/completions", {"prompt": big + g + [7], "max_tokens": 1, "temperature": 0,
                               "session_id": "big"})
    t4 = time.time()
    time.sleep(0.3)
    stop.append(1)
    save_s = s.metric("rosa_session_save_seconds_sum")
    restore_s = s.metric("rosa_session_restore_seconds_sum")
    assert s.metric("rosa_session_restores_total") == 1, "the session was not restored from disk"

    def worst(a, b):
        w = [x for t, x in gaps if a <= t <= b]
        return 1000 * max(w) if w else float("nan")

    print("files: %d bytes; save %.3f s (disk thread); restore %.3f s" % (size, save_s, restore_s))
    print("largest gap between stream tokens: before %.1f ms, during the save %.1f ms, during "
          "the restore request %.1f ms"
          % (worst(0, t1), worst(t1, t2 + 0.05), worst(t3, t4 + 0.05)))
finally:
    s.proc.kill()
    s.proc.wait()
    shutil.rmtree(d, True)
