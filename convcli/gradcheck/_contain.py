"""The first program of a sandboxed child: apply the limits to itself, then become the worker.

Started by :class:`convcli.gradcheck.sandbox.Sandbox` as
``python -I _contain.py CONFIG_JSON WORKER_ARGV...`` in a new session, in a fresh
folder, with a reduced environment.  Standard library only: it never imports
convcli (the child must not need it).  In order, it

1. asks the kernel to SIGKILL it when the parent dies (``PR_SET_PDEATHSIG``),
   and ends at once if the parent is already gone;
2. as root, joins a fresh ``pids`` cgroup when one can be made (root is exempt
   from ``RLIMIT_NPROC``; the cgroup bounds its processes instead and lets the
   parent find every one of them, even those that left the session; empty
   ones a grader killed with SIGKILL left behind are swept first);
3. sets the ``resource`` limits: address space, CPU seconds, file size, core
   files and (not as root) the number of processes, counted above what the
   user runs already;
4. sets ``no_new_privs`` and, where the kernel has Landlock, restricts writing
   files to the sandbox folder (and ``/dev/null``), forbids TCP and, with ABI
   6, sending signals to processes outside the sandbox;
5. moves the protocol pipes to fds 3 (parent to child) and 4 (child to parent),
   writes one JSON line on fd 4 saying what it could apply, and ``execv``-s the
   worker, which inherits everything above.

Failing to apply a ``resource`` limit ends the child with status 121 (never
run student code unbounded); Landlock and the cgroup are best effort and the
hello line says whether they hold.
"""

import ctypes
import json
import os
import resource
import signal
import sys
import time

PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION, LANDLOCK_RULE_PATH_BENEATH = 1, 1
#: Landlock file-system rights that change something (reading and executing stay free), by the ABI that added them.
FS_WRITE_RIGHTS = {1: 0b1_1111_1111_0010, 2: 1 << 13, 3: 1 << 14}  # write, remove, make *; refer; truncate
FS_FILE_RIGHTS = (1 << 1) | (1 << 14)  # rights a rule on a single file may hold: write, truncate
NET_TCP = 0b11  # bind, connect (ABI 4)
SCOPE_SIGNAL = 1 << 1  # ABI 6
EXIT_SETUP_FAILED = 121

LINUX = sys.platform.startswith("linux")  # prctl, Landlock and cgroups are Linux's; elsewhere only rlimits hold
libc = ctypes.CDLL(None, use_errno=True)


def user_tasks(uid):
    """How many tasks (processes and threads, as ``RLIMIT_NPROC`` counts them) ``uid`` runs now."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            count += int(fields.get("Threads", "1"))
    return count


def sweep_stale_cgroups(root, age=120.0):
    """Remove empty ``convcli-sandbox-*`` cgroups older than ``age`` seconds: left by a grader killed with SIGKILL."""
    try:
        names = [name for name in os.listdir(root) if name.startswith("convcli-sandbox-")]
    except OSError:
        return
    for name in names:
        path = os.path.join(root, name)
        try:
            with open(os.path.join(path, "cgroup.procs")) as handle:
                empty = not handle.read().strip()
            if empty and time.time() - os.stat(path).st_mtime > age:
                os.rmdir(path)
        except OSError:
            pass


def join_pids_cgroup(limit):
    """Make ``convcli-<pid>`` in a ``pids`` cgroup hierarchy, bounded at ``limit`` tasks, and join it."""
    for root in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        sweep_stale_cgroups(root)
        path = os.path.join(root, f"convcli-sandbox-{os.getpid()}")
        try:
            os.mkdir(path)
        except OSError:
            continue
        try:
            with open(os.path.join(path, "pids.max"), "w") as handle:
                handle.write(str(limit))
            with open(os.path.join(path, "cgroup.procs"), "w") as handle:
                handle.write(str(os.getpid()))
            return path
        except OSError:
            try:
                os.rmdir(path)
            except OSError:
                pass
    return None


def fail(message, cgroup=None):
    """End before the worker starts: say why on stderr, and take the cgroup away (the parent never heard of it)."""
    os.write(2, f"convcli sandbox: {message}\n".encode())
    if cgroup:
        try:
            with open(os.path.join(os.path.dirname(cgroup), "cgroup.procs"), "w") as handle:
                handle.write(str(os.getpid()))
            os.rmdir(cgroup)
        except OSError:
            pass
    os._exit(EXIT_SETUP_FAILED)


def set_limits(config):
    """The ``resource`` limits; returns what was set (``None`` = not limited)."""
    limits = {resource.RLIMIT_CORE: 0}
    if config["memory"] is not None:
        limits[resource.RLIMIT_AS] = config["memory"]
    if config["file_size"] is not None:
        limits[resource.RLIMIT_FSIZE] = config["file_size"]
    if config["cpu_seconds"] is not None:
        soft = max(1, int(-(-config["cpu_seconds"] // 1)))
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 1))  # SIGXCPU, then SIGKILL a second later
    nproc = None
    if LINUX and config["processes"] is not None and os.getuid() != 0:
        nproc = user_tasks(os.getuid()) + config["processes"]
        limits[resource.RLIMIT_NPROC] = nproc
    for which, value in limits.items():
        resource.setrlimit(which, (value, value))
    return nproc


def landlock(writable):
    """Writing only beneath ``writable`` (and to /dev/null), no TCP, no signals out; the ABI used, or 0."""
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    abi = syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    if abi < 1:
        return 0
    fs = sum(rights for version, rights in FS_WRITE_RIGHTS.items() if version <= abi)
    attr = (ctypes.c_uint64 * 3)(fs, NET_TCP if abi >= 4 else 0, SCOPE_SIGNAL if abi >= 6 else 0)
    size = 8 * (3 if abi >= 6 else 2 if abi >= 4 else 1)
    ruleset = syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return 0
    try:
        for path, rights in [(writable, fs), (os.devnull, fs & FS_FILE_RIGHTS)]:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = (ctypes.c_char * 12).from_buffer_copy(rights.to_bytes(8, "little") + fd.to_bytes(4, "little"))
                if syscall(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
                    return 0
            finally:
                os.close(fd)
        if syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
            return 0
    finally:
        os.close(ruleset)
    return abi


def main():
    config, argv = json.loads(sys.argv[1]), sys.argv[2:]
    if LINUX:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != config["parent"]:  # the parent died before the line above
        os._exit(EXIT_SETUP_FAILED)
    if not os.access(argv[0], os.X_OK):  # say so now: after the hello, the worker's silence would be blamed
        fail(f"cannot start {argv[0]}: not an executable file")
    hello = {"type": "sandbox", "cgroup": None, "nproc": None, "landlock": 0}
    try:
        if LINUX and os.getuid() == 0 and config["processes"] is not None:
            hello["cgroup"] = join_pids_cgroup(config["processes"])
        hello["nproc"] = set_limits(config)
    except (OSError, ValueError) as exc:
        fail(f"cannot set the limits: {exc}", hello["cgroup"])
    if LINUX:
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        hello["landlock"] = landlock(config["root"]) if config["landlock"] else 0
    to_child, to_parent = config["fds"]
    for source, target in ((to_child, 3), (to_parent, 4)):
        if source != target:
            os.dup2(source, target)
            os.close(source)
        os.set_inheritable(target, True)
    os.write(4, (json.dumps(hello) + "\n").encode())
    try:
        os.execv(argv[0], argv)
    except OSError as exc:
        os.write(2, f"convcli sandbox: cannot start {argv[0]}: {exc}\n".encode())
        os._exit(EXIT_SETUP_FAILED)


if __name__ == "__main__":
    main()
