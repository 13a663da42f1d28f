"""test_session_disk.py: the session disk tier (--session-dir): sessions evicted from memory are
saved and restored (answers equal a fresh session's, greedy), survive a restart and a move to
another replica sharing the directory, DELETE removes their files, /v1/sessions shows where each
lives, --session-dir-bytes removes the least recently used files, and a corpus of bad files
(truncated, bit-flipped, wrong magic, another run option's, a newer version, huge counts, a
sidecar that does not match its engine file) is rebuilt from the prompt, counted, never a crash.
Real rosa-server processes on 127.0.0.1, demo model."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from srvtest import SERVER, Server, run  # noqa: E402

P = [5, 6, 7, 8, 9, 10, 11, 12] * 12 + [20, 21, 22]
Q = [3, 4, 5] * 30 + [30, 31]


def tmpdir():
    d = tempfile.mkdtemp(prefix="rosa-sessdir-")
    import atexit
    atexit.register(shutil.rmtree, d, True)
    return d


def fnv(data, h=0xCBF29CE484222325):
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def files_of(d, key):
    name = "%016x" % fnv(key.encode())
    return os.path.join(d, name + ".rosa"), os.path.join(d, name + ".side")


def complete(s, prompt, sid=None, max_tokens=8):
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
            "return_token_ids": True}
    if sid:
        body["session_id"] = sid
    st, r = s.post("/v1/completions", body)
    assert st == 200, (st, r)
    return r["choices"][0]["token_ids"]


def sessions(s):
    import json
    st, data = s.get("/v1/sessions")
    assert st == 200, data
    return {e["id"]: e for e in json.loads(data)["data"]}


def wait_for(cond, what, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def m(s, name):
    return s.metric(name) or 0


def test_evict_to_disk_and_restore():
    d = tmpdir()
    s = Server("--session-dir", d, "--max-sessions", "1")
    try:
        ga = complete(s, P, "a")
        complete(s, Q, "b")  # --max-sessions 1: a goes to disk
        wait_for(lambda: m(s, "rosa_session_saves_total") == 1, "the save")
        ls = sessions(s)
        assert ls["a"]["location"] == "disk" and ls["b"]["location"] == "memory", ls
        assert ls["a"]["tokens"] == len(P) + len(ga) - 1, ls["a"]
        eng, side = files_of(d, "a")
        assert os.path.getsize(eng) + os.path.getsize(side) == ls["a"]["bytes"], ls["a"]
        assert m(s, "rosa_session_disk_sessions") == 1 and m(s, "rosa_sessions") == 1
        assert m(s, "rosa_session_disk_bytes") == ls["a"]["bytes"]
        # a again: restored from its files (and b goes to disk), the answer a fresh
        # computation gives, the restored tokens not recomputed
        reused0 = m(s, "rosa_prompt_tokens_reused_total")
        longer = P + ga + [7, 8]
        got = complete(s, longer, "a")
        assert m(s, "rosa_session_restores_total") == 1
        assert m(s, "rosa_prompt_tokens_reused_total") - reused0 == len(P) + len(ga) - 1
        assert m(s, "rosa_session_restore_seconds_count") == 1
        assert got == complete(s, longer), "restored session differs from a fresh one"
        ls = sessions(s)
        assert ls["a"]["location"] == "memory" and ls["b"]["location"] == "disk", ls
        # a lives in memory again: its files go
        wait_for(lambda: not os.path.exists(eng) and not os.path.exists(side), "a's files removed")
        # a session the prompt does not extend is rebuilt: the same answer as a fresh one
        assert complete(s, Q[:50], "b") == complete(s, Q[:50])
        assert m(s, "rosa_session_restore_failures_total") == 0
        assert m(s, "rosa_session_save_failures_total") == 0
    finally:
        assert s.stop() == 0


def test_taken_back_from_a_pending_save():
    """A session named again while its save waits in the queue, or is being written (each save
    held back 2.5 s here): its state comes back from memory, not from a file."""
    d = tmpdir()
    os.environ["ROSA_TEST_DISK_DELAY_MS"] = "2500"
    try:
        s = Server("--session-dir", d, "--max-sessions", "1")
    finally:
        del os.environ["ROSA_TEST_DISK_DELAY_MS"]
    R = [60, 61, 62, 63] * 10
    try:
        ga = complete(s, P, "a")
        gb = complete(s, Q, "b")  # a's save starts (held back)
        complete(s, R, "c")       # b's save waits behind it
        reused0 = m(s, "rosa_prompt_tokens_reused_total")
        got_b = complete(s, Q + gb, "b")  # b: out of the queue, never written
        assert m(s, "rosa_prompt_tokens_reused_total") - reused0 == len(Q) + len(gb) - 1
        got_a = complete(s, P + ga, "a")  # a: waits for the write, then takes its state
        assert m(s, "rosa_prompt_tokens_reused_total") - reused0 == \
            len(Q) + len(gb) - 1 + len(P) + len(ga) - 1
        assert m(s, "rosa_session_restores_total") == 0
        assert got_b == complete(s, Q + gb) and got_a == complete(s, P + ga)
        assert not any(os.path.exists(f) for f in files_of(d, "b"))
        wait_for(lambda: not any(os.path.exists(f) for f in files_of(d, "a")), "a's files", 10)
        ls = sessions(s)
        assert ls["a"]["location"] == "memory" and ls["b"]["location"] == "disk", ls
    finally:
        assert s.stop() == 0


def test_restore_does_not_stall_other_requests():
    """The disk thread reads a session (each read held back 1.5 s here) while the engine goes on
    with other requests; the restored session's request then runs."""
    import threading
    d = tmpdir()
    os.environ["ROSA_TEST_DISK_DELAY_MS"] = "1500"
    try:
        s = Server("--session-dir", d, "--max-sessions", "1")
    finally:
        del os.environ["ROSA_TEST_DISK_DELAY_MS"]
    try:
        ga = complete(s, P, "a")
        complete(s, Q, "b")  # a's save (1.5 s)
        wait_for(lambda: m(s, "rosa_session_saves_total") == 1, "a's save", 10)
        wait_for(lambda: sessions(s)["a"]["bytes"] > 0, "a's files counted")
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("a", complete(s, P + ga, "a")))
        t.start()
        time.sleep(0.3)
        t0 = time.time()
        complete(s, Q[:20])  # not held up by a's restore
        took = time.time() - t0
        t.join(30)
        assert took < 1.0, took
        assert m(s, "rosa_session_restores_total") == 1
        assert m(s, "rosa_session_restore_seconds_sum") >= 1.5
        assert out["a"] == complete(s, P + ga)
    finally:
        assert s.stop() == 0


def test_byte_budget_spills_to_disk():
    import random
    r = random.Random(7)
    p1, p2 = ([r.randrange(32, 127) for _ in range(300)] for _ in range(2))
    d = tmpdir()
    s = Server("--session-dir", d)
    try:
        complete(s, p1, "probe")
        one = sessions(s)["probe"]["bytes"]
    finally:
        assert s.stop() == 0
    s = Server("--session-dir", d, "--max-session-bytes", str(int(one * 1.5)))
    try:
        g1 = complete(s, p1, "p1")
        complete(s, p2, "p2")  # over the byte budget: p1 goes to disk
        wait_for(lambda: sessions(s)["p1"]["location"] == "disk" and
                 m(s, "rosa_session_saves_total") >= 1, "p1 on disk")
        assert complete(s, p1 + g1, "p1") == complete(s, p1 + g1)
        assert m(s, "rosa_session_restores_total") == 1
    finally:
        assert s.stop() == 0


def test_restart_keeps_session_and_delete_removes_files():
    d = tmpdir()
    s = Server("--session-dir", d)
    try:
        ga = complete(s, P, "keep")
        complete(s, Q, "gone")
        assert not os.listdir(d)  # nothing evicted yet
    finally:
        assert s.stop() == 0  # SIGTERM: the kept sessions are saved
    for key in ("keep", "gone"):
        assert all(os.path.exists(f) for f in files_of(d, key)), os.listdir(d)
    s = Server("--session-dir", d)
    try:
        ls = sessions(s)
        assert ls["keep"]["location"] == "disk" and ls["keep"]["tokens"] == len(P) + len(ga) - 1
        assert ls["gone"]["location"] == "disk", ls
        assert m(s, "rosa_session_disk_sessions") == 2
        # DELETE of a session on disk removes its files
        st, _, _ = s.request("DELETE", "/v1/sessions/gone")
        assert st == 200
        wait_for(lambda: not any(os.path.exists(f) for f in files_of(d, "gone")), "files removed")
        assert "gone" not in sessions(s) and m(s, "rosa_session_disk_sessions") == 1
        st, _, _ = s.request("DELETE", "/v1/sessions/gone")
        assert st == 404
        reused0 = m(s, "rosa_prompt_tokens_reused_total")
        longer = P + ga + [1, 2, 3]
        got = complete(s, longer, "keep")
        assert m(s, "rosa_session_restores_total") == 1
        assert m(s, "rosa_prompt_tokens_reused_total") - reused0 == len(P) + len(ga) - 1
        assert got == complete(s, longer)
    finally:
        assert s.stop() == 0
    # saved again at the second shutdown, then deleted while in memory on a third server
    assert all(os.path.exists(f) for f in files_of(d, "keep"))
    s = Server("--session-dir", d)
    try:
        complete(s, P, "keep")  # rebuilt (P does not extend the kept tokens): in memory
        st, _, _ = s.request("DELETE", "/v1/sessions/keep")
        assert st == 200
        wait_for(lambda: not os.listdir(d), "every file removed")
    finally:
        assert s.stop() == 0
    assert not os.listdir(d), os.listdir(d)


def test_dir_bytes_removes_least_recently_used():
    def fill(s):  # each new session pushes the one before to disk: s0, s1, s2 go there
        for i in range(4):
            complete(s, [40 + i] + P[1:], "s%d" % i)
        wait_for(lambda: m(s, "rosa_session_saves_total") == 3, "three saves")

    d = tmpdir()
    s = Server("--session-dir", d, "--max-sessions", "1")
    try:
        fill(s)
        ls = sessions(s)
        b = [ls["s%d" % i]["bytes"] for i in range(3)]
        assert m(s, "rosa_session_disk_evictions_total") == 0
    finally:
        assert s.stop() == 0
    shutil.rmtree(d)
    os.mkdir(d)
    cap = b[1] + b[2] + b[0] // 2  # room for two, not three
    s = Server("--session-dir", d, "--max-sessions", "1", "--session-dir-bytes", str(cap))
    try:
        fill(s)
        wait_for(lambda: not os.path.exists(files_of(d, "s0")[0]), "s0's files removed")
        ls = sessions(s)
        assert "s0" not in ls and ls["s1"]["location"] == "disk" and ls["s2"]["location"] == "disk"
        assert m(s, "rosa_session_disk_evictions_total") == 1
        assert m(s, "rosa_session_disk_bytes") == b[1] + b[2] <= cap
        assert sorted(os.listdir(d)) == sorted(os.path.basename(f) for k in ("s1", "s2")
                                               for f in files_of(d, k))
    finally:
        assert s.stop() == 0


def test_two_replicas_share_the_directory():
    d = tmpdir()
    a = Server("--session-dir", d, "--replica-id", "A")
    b = Server("--session-dir", d, "--replica-id", "B")
    try:
        ga = complete(a, P, "moving")
        assert a.stop() == 0  # graceful: A saves it
        assert all(os.path.exists(f) for f in files_of(d, "moving"))
        reused0 = m(b, "rosa_prompt_tokens_reused_total")
        longer = P + ga + [4, 5]
        got = complete(b, longer, "moving")  # B never saw it: it finds the files, restores
        assert m(b, "rosa_session_restores_total") == 1
        assert m(b, "rosa_prompt_tokens_reused_total") - reused0 == len(P) + len(ga) - 1
        assert got == complete(b, longer)
        assert sessions(b)["moving"]["location"] == "memory"
        wait_for(lambda: not os.listdir(d), "the files taken by B removed")
    finally:
        if a.proc.poll() is None:
            a.stop()
        assert b.stop() == 0


def test_owners_keep_their_sessions_on_disk():
    """Two API-key owners with the same session id: two files (the key includes the owner),
    each owner lists, restores and deletes only its own."""
    import json
    d = tmpdir()
    keys = os.path.join(tmpdir(), "keys")
    with open(keys, "w") as f:
        f.write("alice-key-0001 alice\nbob-key-00002 bob\n")
    A = {"Authorization": "Bearer alice-key-0001"}
    B = {"Authorization": "Bearer bob-key-00002"}

    def ask(h, prompt):
        st, r = s.post("/v1/completions", {"prompt": prompt, "max_tokens": 6, "temperature": 0,
                                            "return_token_ids": True, "session_id": "s"}, h)
        assert st == 200, r
        return r["choices"][0]["token_ids"]

    def listed(h):
        st, data, _ = s.request("GET", "/v1/sessions", headers=h)
        return {e["id"]: e for e in json.loads(data)["data"]}

    s = Server("--session-dir", d, "--max-sessions", "1", "--api-key-file", keys)
    try:
        ga = ask(A, P)
        gb = ask(B, Q)  # alice's "s" goes to disk
        assert listed(A)["s"]["location"] == "disk" and listed(B)["s"]["location"] == "memory"
        assert all(os.path.exists(f) for f in files_of(d, "alice/s"))
        assert not any(os.path.exists(f) for f in files_of(d, "bob/s"))
        got = ask(A, P + ga)  # restored (bob's goes to disk)
        assert m(s, "rosa_session_restores_total") == 1
        assert got == complete_fresh(s, A, P + ga)
        assert listed(A)["s"]["location"] == "memory" and listed(B)["s"]["location"] == "disk"
        st, _, _ = s.request("DELETE", "/v1/sessions/s", headers=B)
        assert st == 200
        wait_for(lambda: not any(os.path.exists(f) for f in files_of(d, "bob/s")), "bob's files")
        assert listed(A)["s"]["location"] == "memory" and "s" not in listed(B)
        assert len(gb) == 6
    finally:
        assert s.stop() == 0


def complete_fresh(s, h, prompt):
    st, r = s.post("/v1/completions", {"prompt": prompt, "max_tokens": 6, "temperature": 0,
                                        "return_token_ids": True}, h)
    assert st == 200, r
    return r["choices"][0]["token_ids"]


def test_churn_many_sessions_few_slots():
    """Eight conversations through two memory slots at once, with DELETEs in between: sessions
    go to disk and come back (some while their save is still queued or being written); every
    answer equals a fresh computation's."""
    import random
    import threading
    d = tmpdir()
    s = Server("--session-dir", d, "--max-sessions", "2", "--max-batch", "4")
    bad, errors = [], []

    def in_session(prompt, sid):  # 429 while both slots run other sessions: retry
        for _ in range(500):
            st, r = s.post("/v1/completions", {"prompt": prompt, "max_tokens": 4,
                                                "temperature": 0, "return_token_ids": True,
                                                "session_id": sid})
            if st != 429:
                assert st == 200, (st, r)
                return r["choices"][0]["token_ids"]
            time.sleep(0.01)
        raise AssertionError("429 for too long")

    def talk(k):
        r = random.Random(k)
        prompt = [r.randrange(32, 127) for _ in range(40)]
        try:
            for turn in range(5):
                got = in_session(prompt, "c%d" % k)
                if got != complete(s, prompt, max_tokens=4):
                    bad.append((k, turn))
                prompt = prompt + got + [r.randrange(32, 127) for _ in range(5)]
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    def deleter():
        r = random.Random(99)
        for _ in range(10):
            time.sleep(0.05)
            st, _, _ = s.request("DELETE", "/v1/sessions/c%d" % r.randrange(8))
            if st not in (200, 404, 409):
                errors.append("DELETE %d" % st)

    try:
        ts = [threading.Thread(target=talk, args=(k,)) for k in range(8)]
        ts.append(threading.Thread(target=deleter))
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        assert not errors and not bad, (errors, bad)
        assert m(s, "rosa_session_saves_total") > 0 and m(s, "rosa_session_restores_total") > 0
        assert m(s, "rosa_session_restore_failures_total") == 0
        assert m(s, "rosa_session_save_failures_total") == 0
    finally:
        assert s.stop() == 0
    # what the list said at the end is what is in the directory after the shutdown's saves
    s = Server("--session-dir", d)
    try:
        ls = sessions(s)
        assert all(e["location"] == "disk" for e in ls.values())
        assert len(os.listdir(d)) == 2 * len(ls), (sorted(os.listdir(d)), ls)
    finally:
        assert s.stop() == 0


# ---------------------------------------------------------------- bad files

def side_bytes(key, toks, eng_size, eng_tail, version=1, n=None, bad_sum=False):
    k = key.encode()
    n = len(toks) if n is None else n
    h = b"ROSASIDE" + struct.pack("<IIQQQ", version, len(k), n, eng_size, eng_tail)
    body = k + b"".join(struct.pack("<i", t) for t in toks)
    s = fnv(body, fnv(h))
    if bad_sum:
        s ^= 1
    return h + struct.pack("<Q", s) + bytes(16) + body


def put(d, key, eng, toks, tail=None, **kw):
    pe, ps = files_of(d, key)
    with open(pe, "wb") as f:
        f.write(eng)
    if tail is None:
        tail = struct.unpack("<Q", eng[-8:])[0] if len(eng) >= 8 else 0
    with open(ps, "wb") as f:
        f.write(side_bytes(key, toks, len(eng), tail, **kw))


def saved_session(args, key, prompt):
    """(engine file bytes, tokens) of a session saved by a server run with args."""
    d = tmpdir()
    s = Server("--session-dir", d, *args)
    try:
        g = complete(s, prompt, key)
    finally:
        assert s.stop() == 0
    pe, _ = files_of(d, key)
    with open(pe, "rb") as f:
        return f.read(), prompt + g[:-1]


def test_bad_files_are_rebuilt():
    eng, toks = saved_session([], "x", P)
    foreign, ftoks = saved_session(["--window", "3"], "x", P)
    other, otoks = saved_session([], "x", Q)
    same, stoks = saved_session([], "x", [99] + P[1:])
    d = tmpdir()
    mid = len(eng) // 2
    flipped = bytearray(eng)
    flipped[mid] ^= 0x10
    cases = {  # key: (engine file, tokens, sidecar options, files removed afterwards)
        "truncated": (eng[:mid], toks, {}, True),
        "bitflip": (bytes(flipped), toks, {}, True),
        "magic": (b"NOTASESS" + eng[8:], toks, {}, True),
        "foreign": (foreign, ftoks, {}, False),   # another run option's: may be a replica's
        "future": (eng, toks, {"version": 2}, False),  # a newer sidecar
        "future-engine": (eng[:8] + struct.pack("<I", 2) + eng[12:], toks, {}, False),
        "huge": (eng, toks, {"n": 1 << 40}, True),
        "badsum": (eng, toks, {"bad_sum": True}, True),
        "badtoken": (eng, toks[:-1] + [1 << 30], {}, True),
        "wrongstate": (other, toks, {}, True),   # a sidecar whose tokens the state lacks
        "empty": (b"", toks, {}, True),
    }
    for key, (e, t, kw, _) in cases.items():
        put(d, key, e, t, **kw)
    # a sidecar of one save beside the engine file of another with as many tokens (the order
    # of two replicas' renames): refused by the engine file's size and last bytes it names
    put(d, "pair", same, toks, tail=struct.unpack("<Q", eng[-8:])[0])
    assert len(stoks) == len(toks) and stoks != toks
    cases["pair"] = (None, toks, {}, True)
    # a leftover of an interrupted save, old enough to be removed at start
    part = os.path.join(d, "0123456789abcdef.1-2-3.part")
    with open(part, "wb") as f:
        f.write(b"x" * 100)
    os.utime(part, (time.time() - 3600, time.time() - 3600))
    s = Server("--session-dir", d)
    try:
        assert not os.path.exists(part)
        log = s.logtext()
        assert "skipping" in log  # unreadable sidecars were skipped at the scan
        longer = toks + [7, 8, 9]
        want = complete(s, longer)
        for n, key in enumerate(cases, 1):
            got = complete(s, longer, key)
            assert got == want, (key, got, want)
            assert m(s, "rosa_session_restore_failures_total") == n, key
            assert m(s, "rosa_session_restores_total") == 0, key
        for key, (_, _, _, removed) in cases.items():
            exist = [os.path.exists(f) for f in files_of(d, key)]
            if removed:
                wait_for(lambda: not any(os.path.exists(f) for f in files_of(d, key)),
                         key + " files removed")
            else:
                assert all(exist), (key, exist)
        log = s.logtext()
        for why in ("malformed input", "made for another model", "unsupported"):
            assert why in log, (why, log[-3000:])
        # every session now lives in memory, rebuilt, and continues normally
        assert all(e["location"] == "memory" for e in sessions(s).values())
        assert s.proc.poll() is None
    finally:
        assert s.stop() == 0
    # (the rebuilt sessions were saved at shutdown over the bad files: they restore now)
    s = Server("--session-dir", d)
    try:
        assert complete(s, toks + [7, 8, 9] + want + [1], "foreign") == \
            complete(s, toks + [7, 8, 9] + want + [1])
        assert m(s, "rosa_session_restores_total") == 1
        assert m(s, "rosa_session_restore_failures_total") == 0
    finally:
        assert s.stop() == 0


def test_save_failure_drops_the_session():
    d = tmpdir()
    sub = os.path.join(d, "dir")
    os.mkdir(sub)
    s = Server("--session-dir", sub, "--max-sessions", "1")
    try:
        ga = complete(s, P, "a")
        shutil.rmtree(sub)  # the directory vanishes: every save fails
        complete(s, Q, "b")
        wait_for(lambda: m(s, "rosa_session_save_failures_total") == 1, "the failed save")
        assert "a" not in sessions(s)
        assert "cannot save" in s.logtext()
        longer = P + ga + [7]
        assert complete(s, longer, "a") == complete(s, longer)  # rebuilt
    finally:
        assert s.stop() == 0  # (the shutdown saves fail too: still a clean exit)


def test_bad_session_dir_is_a_startup_error():
    d = tmpdir()
    afile = os.path.join(d, "file")
    open(afile, "w").close()
    for bad, words in ((os.path.join(d, "missing"), "No such file"), (afile, "not a directory"),
                       ("/proc", "cannot write")):
        p = subprocess.run([SERVER, "--port", "0", "--session-dir", bad], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 2 and "--session-dir" in p.stderr and words in p.stderr, \
            (bad, p.returncode, p.stderr)


if __name__ == "__main__":
    if not os.path.exists(SERVER):
        print("rosa-server not built")
        sys.exit(77)
    run([test_evict_to_disk_and_restore, test_taken_back_from_a_pending_save,
         test_restore_does_not_stall_other_requests,
         test_byte_budget_spills_to_disk,
         test_restart_keeps_session_and_delete_removes_files,
         test_dir_bytes_removes_least_recently_used, test_two_replicas_share_the_directory,
         test_owners_keep_their_sessions_on_disk, test_churn_many_sessions_few_slots,
         test_bad_files_are_rebuilt, test_save_failure_drops_the_session,
         test_bad_session_dir_is_a_startup_error])
