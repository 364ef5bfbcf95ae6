"""Starts one container of tests/real's pods, the way a container runtime would, without one.

Run as root inside new namespaces:

    unshare --mount --uts --pid --fork --kill-child --propagation private python3 sandbox.py SPEC

SPEC is a JSON file that test_real_start.py writes: the new root's layout, the mounts, the
process's argv, environment and working directory. This script builds the root on a tmpfs (this
machine's /usr and /etc read-only, a fresh /proc for the new PID namespace, /dev, tmpfs /tmp,
/run and /root), puts Flink's release files at /opt/flink through an overlay (the unpacked PyPI
distribution read-only below, a per-container writable layer above, as an image's layer and the
container's), mounts the pod's volumes at their mount paths in order of depth, sets the host
name to the pod's name, then chroots and executes argv as PID 1, looking the program up in the
container's PATH as runc does. Everything it mounts lives and dies with the mount namespace.
"""
import json
import os
import posixpath
import subprocess
import sys


def run(*cmd):
    subprocess.run(cmd, check=True)


def inside(root, path, make=None):
    """The host path of a container path, following symlinks inside the new root (never out of
    it); make='dir' or 'file' creates what is missing, as the runtime creates mount points."""
    parts = [p for p in path.split("/") if p]
    cur = "/"
    hops = 0
    i = 0
    while i < len(parts):
        part = parts[i]
        if part == "..":
            cur = posixpath.dirname(cur) if cur != "/" else "/"
            i += 1
            continue
        if part == ".":
            i += 1
            continue
        nxt = posixpath.join(cur, part)
        host = root + nxt
        if os.path.islink(host):
            hops += 1
            if hops > 40:
                raise OSError("too many symlinks at " + path)
            target = os.readlink(host)
            rest = parts[i + 1:]
            base = "/" if target.startswith("/") else cur
            parts = [p for p in posixpath.join(base, target).split("/") if p] + rest
            cur = "/"
            i = 0
            continue
        if not os.path.exists(host) and make:
            last = i == len(parts) - 1
            if last and make == "file":
                os.makedirs(os.path.dirname(host), exist_ok=True)
                open(host, "a").close()
            else:
                os.makedirs(host, exist_ok=True)
        cur = nxt
        i += 1
    return root + cur


def bind(source, target, ro):
    run("mount", "--bind", source, target)
    if ro:
        run("mount", "-o", "remount,bind,ro", target)


def main(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    root = spec["root"]
    run("mount", "-t", "tmpfs", "-o", "mode=0755", "rootfs", root)
    for d in ("usr", "etc", "proc", "dev", "sys", "tmp", "run", "opt", "root", "var/tmp", "home"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"),
                         ("lib64", "usr/lib64"), ("var/run", "../run")):
        os.symlink(target, os.path.join(root, link))
    bind("/usr", root + "/usr", True)
    bind("/etc", root + "/etc", True)
    run("mount", "-t", "proc", "proc", root + "/proc")
    run("mount", "--rbind", "/dev", root + "/dev")
    run("mount", "--rbind", "/sys", root + "/sys")
    for d in ("/tmp", "/run", "/root", "/var/tmp"):
        mode = "1777" if "tmp" in d else "0755"
        run("mount", "-t", "tmpfs", "-o", "mode=" + mode, "tmpfs", root + d)
    if spec.get("flink_dist"):
        flink = inside(root, "/opt/flink", make="dir")
        run("mount", "-t", "overlay", "overlay", "-o",
            "lowerdir=%s,upperdir=%s,workdir=%s" % (spec["flink_dist"], spec["overlay_upper"],
                                                   spec["overlay_work"]), flink)
    for f in spec.get("files", []):
        dest = inside(root, f["path"], make="file")
        with open(f["source"], "rb") as src, open(dest, "wb") as out:
            out.write(src.read())
        os.chmod(dest, f.get("mode", 0o644))
    # Mounts in order of depth, parents before children, as containerd orders them.
    binds = sorted(spec.get("binds", []), key=lambda b: len([p for p in b["target"].split("/") if p]))
    for b in binds:
        target = inside(root, b["target"], make=b["kind"])
        bind(b["source"], target, b.get("ro", False))
    run("hostname", spec["hostname"])

    os.chroot(root)
    os.chdir(spec.get("cwd") or "/")
    argv = spec["argv"]
    env = spec["env"]
    prog = argv[0]
    if "/" not in prog:
        for d in env.get("PATH", "").split(":"):
            cand = posixpath.join(d or ".", prog)
            if os.path.isfile(cand) and os.access(cand, os.X_OK):
                prog = cand
                break
        else:
            sys.stderr.write('runtime: exec: "%s": executable file not found in $PATH\n' % argv[0])
            sys.exit(127)
    elif not os.path.exists(prog):
        sys.stderr.write('runtime: exec: "%s": stat %s: no such file or directory\n' % (prog, prog))
        sys.exit(127)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(prog, argv, env)
    except OSError as e:
        sys.stderr.write('runtime: exec: "%s": %s\n' % (prog, e.strerror))
        sys.exit(126)


if __name__ == "__main__":
    main(sys.argv[1])
