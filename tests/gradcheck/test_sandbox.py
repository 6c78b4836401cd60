"""The sandbox holds against the attacks of issue 12, each a small script in ``sandbox_attacks/``.

Each attack must end as a contained error or a refusal, within its limit, and
leave no process behind.  Time limits are only generous upper bounds ("ends
within the limit"), never measurements.
"""

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import convcli
from convcli.gradcheck import _procs
from convcli.gradcheck.limits import Limits, MiB
from convcli.gradcheck.sandbox import (
    ChildExited,
    ProtocolError,
    Sandbox,
    Terminated,
    Timeout,
    describe_exit,
    parse_message,
)
from convcli.gradcheck.sanitize import PREFIX, BoundedLines, clean_text

ATTACKS = Path(__file__).parent / "sandbox_attacks"
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is built on Linux")


def attack(name: str, *args: str, limits: Limits = Limits(), **kwargs) -> Sandbox:
    return Sandbox([sys.executable, "-I", str(ATTACKS / f"{name}.py"), *args], limits, **kwargs)


def gone(pid: int) -> bool:
    return not _procs.alive(pid)


def wait_gone(pids, seconds: float = 10.0) -> "list[int]":
    """The pids still alive after waiting up to ``seconds`` (a zombie counts as gone)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not all(gone(pid) for pid in pids):
        time.sleep(0.05)
    return [pid for pid in pids if not gone(pid)]


# ----------------------------------------------------------------------------- environment and files


def test_environment_is_reduced_to_path_lang_home_tmpdir(monkeypatch):
    monkeypatch.setenv("FAKE_CI_TOKEN", "ghp_secret")
    with attack("env_leak") as box:
        report = box.receive(timeout=60)
        root = box.root
    env = report["env"]
    assert "FAKE_CI_TOKEN" not in env and "ghp_secret" not in json.dumps(report)
    assert set(env) == {"PATH", "LANG", "HOME", "TMPDIR", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"}
    assert env["HOME"] == report["home"] == str(root / "home") != os.path.expanduser("~")
    assert env["TMPDIR"] == str(root / "tmp") and report["cwd"] == str(root / "work")
    assert not root.exists(), "the sandbox folder is removed afterwards"


def test_writes_stay_in_the_sandbox_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outside = [str(tmp_path / "in_parent_cwd.txt"), str(Path(convcli.__file__).parent / "injected.py")]
    with attack("writes") as box:
        box.send({"paths": outside}, timeout=10)
        results = box.receive(timeout=60)["results"]
        root = box.root
        landlock = box.containment["landlock"]
    inside = [path for path in results if path.startswith(str(root))]
    assert len(inside) == 3 and all(results[path] == "written" for path in inside)  # cwd, $HOME, $TMPDIR
    assert not root.exists()
    if not landlock:
        pytest.skip("this kernel has no Landlock: writes outside the folder cannot be stopped")
    assert [results[path] for path in outside] == ["PermissionError", "PermissionError"]
    assert list(tmp_path.iterdir()) == [] and not Path(outside[1]).exists()


def test_file_size_is_limited():
    with attack("big_file", limits=Limits(file_size=1 * MiB)) as box:
        box.send({"bytes": 512 * 1024}, timeout=10)
        assert box.receive(timeout=60) == {"result": "written"}
    with attack("big_file", limits=Limits(file_size=1 * MiB)) as box:
        box.send({"bytes": 2 * MiB}, timeout=10)
        try:
            assert box.receive(timeout=60) == {"result": "OSError"}  # EFBIG: Python ignores SIGXFSZ
        except ChildExited as exc:
            assert exc.returncode == -signal.SIGXFSZ


# ----------------------------------------------------------------------------- processes


def test_setsid_daemon_does_not_outlive_the_sandbox():
    with attack("daemon") as box:
        pids = box.receive(timeout=60)
        assert not gone(pids["daemon"])
    assert wait_gone([pids["daemon"], pids["me"]]) == []


def test_fork_bomb_is_bounded_and_ended():
    with attack("fork_bomb", limits=Limits(processes=20)) as box:
        report = box.receive(timeout=120)
    assert report["error"] == "BlockingIOError" and report["forked"] <= 20
    assert wait_gone(report["pids"]) == []


def test_memory_is_limited():
    with attack("memory_hog", limits=Limits(memory=512 * MiB)) as box:
        report = box.receive(timeout=120)
    assert report["error"] == "MemoryError" and report["mib"] < 512


def test_cpu_time_is_limited():
    with attack("spin", limits=Limits(cpu_seconds=1)) as box:
        with pytest.raises(ChildExited) as caught:
            box.receive(timeout=120)
    assert caught.value.returncode in (-signal.SIGXCPU, -signal.SIGKILL)
    assert "killed by signal SIGXCPU" in describe_exit(-signal.SIGXCPU)


def test_ctrl_c_kills_the_child():
    with pytest.raises(KeyboardInterrupt):
        with attack("daemon") as box:
            pids = box.receive(timeout=60)
            raise KeyboardInterrupt
    assert wait_gone([pids["daemon"], pids["me"]]) == []


def test_child_cannot_signal_the_parent():
    with attack("signals") as box:
        if box.containment["landlock"] < 6:
            pytest.skip("signal scoping needs Landlock ABI 6")
        box.send({"parent": os.getpid()}, timeout=10)
        assert box.receive(timeout=60) == {"result": "PermissionError"}


def run_driver(*args: str, seconds: float = 300) -> "tuple[list[dict], int]":
    """Run ``driver.py`` in a fresh Python; its messages, and the peak memory of it and its children (KiB).

    The peak comes from ``getrusage(RUSAGE_CHILDREN)`` of a Python whose only
    child is the driver, so nothing else this test session ran counts.
    """
    code = (
        "import resource, subprocess, sys; "
        "result = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "sys.stderr.write(result.stderr); sys.stdout.write(result.stdout); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    driver = [sys.executable, str(ATTACKS / "driver.py"), *args]
    result = subprocess.run([sys.executable, "-c", code, *driver], capture_output=True, text=True, timeout=seconds)
    *lines, peak = result.stdout.splitlines()
    return [json.loads(line) for line in lines], int(peak)


def test_output_without_newlines_keeps_the_parent_small():
    """512 MiB printed without a newline: all read, one line kept, the parent's peak far below."""
    messages, peak_kib = run_driver("endless_output", "300", "512")
    summary = messages[-1]
    assert summary["ended"] == "ChildExited" and summary["bytes"] == 512 * MiB
    assert summary["kept"] == 1 and summary["cut"] == 1 and summary["longest_kept"] <= len(PREFIX) + 500
    assert peak_kib < 150 * 1024, f"the parent peaked at {peak_kib / 1024:.0f} MiB"


def test_endless_output_ends_at_the_deadline_with_a_small_parent():
    messages, peak_kib = run_driver("endless_output", "3")
    summary = messages[-1]
    assert summary["ended"] == "Timeout" and summary["bytes"] > 0 and summary["kept"] == 1
    assert peak_kib < 150 * 1024, f"the parent peaked at {peak_kib / 1024:.0f} MiB"


def test_sigterm_to_the_parent_leaves_no_process(tmp_path):
    driver = subprocess.Popen(
        [sys.executable, str(ATTACKS / "driver.py"), "daemon", "600"], stdout=subprocess.PIPE, text=True
    )
    try:
        started = json.loads(driver.stdout.readline())
        pids = json.loads(driver.stdout.readline())
        assert not gone(pids["daemon"])
        driver.send_signal(signal.SIGTERM)
        assert driver.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        driver.kill()
    assert wait_gone([started["pid"], pids["me"], pids["daemon"]]) == []
    assert not Path(started["root"]).exists()


def test_after_termination_no_sandbox_starts_until_the_next_run():
    """Once convcli is ending (SIGTERM, Ctrl-C), a worker thread cannot start one more child."""
    from concurrent.futures import ThreadPoolExecutor

    from convcli.gradcheck.sandbox import signal_guard, terminate_all

    def start():
        with attack("spin"):
            return "started"

    with signal_guard():
        terminate_all()
        with pytest.raises(Terminated):
            start()
        with ThreadPoolExecutor(1) as pool:
            with pytest.raises(Terminated):
                pool.submit(start).result()
    assert start() == "started"  # a new outermost guard: a new run


# ----------------------------------------------------------------------------- the protocol


def test_forged_keepalives_do_not_extend_the_deadline():
    """A flood of "alive" and "done" messages: the caller's deadline still ends the wait."""
    with attack("keepalive") as box:
        deadline = time.monotonic() + 2
        received = 0
        with pytest.raises(Timeout):
            while True:
                box.receive(deadline=deadline)
                received += 1
        assert time.monotonic() - deadline < 30 and received > 0


@pytest.mark.parametrize(
    "junk", ["oversized", "endless", "not_json", "array", "repeated_key", "not_utf8", "deep", "empty"]
)
def test_malformed_messages_are_protocol_errors(junk):
    with attack("protocol_junk", junk, limits=Limits(message_bytes=2 * MiB)) as box:
        with pytest.raises(ProtocolError):
            box.receive(timeout=60)
        with pytest.raises(ProtocolError):  # and stay so: the "done" after it is never read
            box.receive(timeout=1)


def test_parse_message_accepts_only_json_objects():
    assert parse_message(b'{"type": "result", "value": NaN}')["type"] == "result"
    for line in (b"", b"1", b'"x"', b"null", b'{"a": 1, "a": 2}', b"\xff", b"{"):
        assert isinstance(parse_message(line), ProtocolError)


def test_send_to_a_child_that_never_reads_times_out():
    with attack("spin") as box:
        with pytest.raises(Timeout):
            box.send({"data": "x" * (4 * MiB)}, timeout=2)


# ----------------------------------------------------------------------------- the student's output


def test_escape_sequences_and_ci_commands_never_reach_the_log():
    shown = []
    with attack("fake_output", on_output=shown.append) as box:
        with pytest.raises(ChildExited):
            box.receive(timeout=60)
    assert shown == box.output.kept and len(shown) == 7
    for line in shown:
        assert line.startswith(PREFIX)
        assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or 0x2028 <= ord(c) <= 0x202E for c in line), line
    assert shown[0] == PREFIX + "PASSED: 6 checks of lab.py: 6 passed, 0 failed"
    assert shown[1] == PREFIX + "::add-mask::hunter2"
    assert shown[3] == PREFIX + "::error file=lab.py::forged"


def test_bounded_lines_keep_at_most_n_lines_of_m_characters():
    lines = BoundedLines(lines=3, width=20)
    for chunk in [b"one\ntw", b"o\n", b"x" * 100, b"y" * 100, b"\nfour\nfive\nsix"]:
        lines.feed(chunk)
    lines.close()
    assert lines.kept == [PREFIX + "one", PREFIX + "two", PREFIX + "x" * 19 + "\u2026"]
    assert (lines.dropped_lines, lines.cut_lines) == (3, 1)
    assert lines.hidden_summary == "[3 more lines not shown; 1 line cut at 20 characters]"


def test_multibyte_characters_split_across_chunks_survive():
    lines = BoundedLines()
    data = "grüße, 世界\n".encode()
    for i in range(len(data)):
        lines.feed(data[i : i + 1])
    lines.close()
    assert lines.kept == [PREFIX + "grüße, 世界"]


def test_clean_text():
    assert clean_text("\x1b[1;31mred\x1b[0m\ttab\r") == "red tab"
    assert clean_text("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == "link"
    assert clean_text("a\x00b\x07c\x7fd\x85e") == "abcde"


@pytest.mark.parametrize(
    "text, expected",
    [("4G", 4 * 2**30), ("512M", 512 * MiB), ("1.5GiB", 3 * 2**29), ("800mb", 800 * MiB), ("1073741824", 2**30),
     ("none", None), (None, None), (2**30, 2**30)],
)
def test_parse_memory(text, expected):
    from convcli.gradcheck.limits import parse_memory

    assert parse_memory(text) == expected


@pytest.mark.parametrize("text, message", [("lots", "must be a size like 4G"), ("-1G", "must be a size"), ("1M", "at least 64M")])
def test_parse_memory_refuses(text, message):
    from convcli.errors import ParameterError
    from convcli.gradcheck.limits import parse_memory

    with pytest.raises(ParameterError, match=message):
        parse_memory(text)


def test_a_child_that_cannot_start_says_why(tmp_path):
    from convcli.gradcheck.sandbox import SandboxError

    with pytest.raises(SandboxError, match="did not start: the process ended .*cannot start /nonexistent"):
        with Sandbox(["/nonexistent/python"]):
            pass
