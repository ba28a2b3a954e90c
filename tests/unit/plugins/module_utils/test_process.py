import os
import signal
import sys

from ansible_collections.depot.software.plugins.module_utils._process import run, tail, to_int32


def test_exit_status_and_output():
    done = run(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (done.rc, done.timed_out, done.stdout, done.stderr) == (3, False, ["out"], ["err"])


def test_result_file_overrides_the_8_bit_status():
    assert run(["/bin/sh", "-c", 'echo 3010 > "$DEPOT_RESULT_FILE"']).rc == 3010
    assert run(["/bin/sh", "-c", 'echo 4294967295 > "$DEPOT_RESULT_FILE"']).rc == -1
    assert run(["/bin/sh", "-c", 'echo junk > "$DEPOT_RESULT_FILE"; exit 4']).rc == 4


def test_timeout_ends_the_whole_tree_even_a_child_in_its_own_session(tmp_path):
    pids = tmp_path / "pids"
    script = ("setsid sleep 300 & echo $! >> %s; sleep 300 & echo $! >> %s; wait" % (pids, pids))
    done = run(["/bin/sh", "-c", script], timeout=1)
    assert done.timed_out
    for pid in map(int, pids.read_text().split()):
        try:
            os.kill(pid, 0)
            with open("/proc/%d/stat" % pid) as f:
                assert f.read().rsplit(")", 1)[1].split()[0] == "Z", "pid %d survived" % pid
        except ProcessLookupError:
            pass


def test_a_grandchild_holding_output_open_does_not_hang_the_attempt():
    done = run(["/bin/sh", "-c", "sleep 30 & echo started"], timeout=20)
    assert (done.rc, done.timed_out, done.stdout) == (0, False, ["started"])


def test_tail_reads_the_last_lines(tmp_path):
    log = tmp_path / "log"
    log.write_text("".join("line %d\n" % i for i in range(10000)))
    assert tail(str(log), 3) == ["line 9997", "line 9998", "line 9999"]
    assert tail(str(tmp_path / "missing"), 3) == []


def test_signals_keep_their_negative_codes():
    assert run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]).rc == -signal.SIGKILL
    assert to_int32(2 ** 31) == -(2 ** 31)
