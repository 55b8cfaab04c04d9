#!/usr/bin/env python3
"""Mutation testing: does any test notice when a line of the library changes?

    tests/mutate.py SRC TEST [TEST...] [--n 30] [--seed 1] [--lines 12,40]
    make mutation MUT_FILE=libmiles/metrics.c MUT_TESTS="test_metrics"

Applies one small change at a time to SRC (a relational or arithmetic operator
swapped, && for ||, a constant nudged, MILES_OK returned as an error), rebuilds
the library, the tools and the named test programs, runs them, and lists the changes that every one of
them survived.  Coverage says a line ran; this says whether a test looks at
what it computed.

It works in a scratch copy of the repository (--tree, default
/tmp/miles-mutation: a git worktree of HEAD plus the uncommitted changes, built
on first use), never in this one.  Lines that `make coverage` saw unexecuted
(build-cov/coverage/<file>.gcov, when present) are left alone: a mutant there
says nothing new.  Mutants are sampled at random (--seed): --n of them.

Reading the survivors: some are equivalent (the same result by another route,
e.g. an optimizer's line-search detail, a comparison of keys that are never
equal); loop bounds one past the end are ASan's to find (`make asan`); the rest
are a missing or loose assertion.  Exits 0; the survivors are the output.
"""
import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

# (pattern, replacement); None: a float literal times 1.01
OPS = [
    (r' < ', ' <= '), (r' <= ', ' < '), (r' > ', ' >= '), (r' >= ', ' > '),
    (r' == ', ' != '), (r' != ', ' == '), (r' \+ ', ' - '), (r' - ', ' + '),
    (r' \* ', ' / '), (r' && ', ' || '), (r' \|\| ', ' && '),
    (r'\+\+', '--'), (r' \+= ', ' -= '), (r' -= ', ' += '),
    (r'\b1\b(?![.\d])', '2'), (r'\b0\b(?![.\dx])', '1'),
    (r'\b(\d+\.\d+)f?\b', None),
    (r'fmaxf?\(', 'fminf('), (r'\breturn MILES_OK;', 'return MILES_EINVAL;'),
]


def covered_lines(gcov):
    out = set()
    for ln in open(gcov, errors='replace'):
        m = re.match(r'\s*(\d+)\*?:\s*(\d+):', ln)
        if m and int(m.group(1)) > 0:
            out.add(int(m.group(2)))
    return out


def mutants(lines, cov):
    res = []
    in_comment = False   # inside a /* ... */ that began on an earlier line
    for i, line in enumerate(lines, 1):
        s = line.strip()
        was_in = in_comment
        # the comment state after this line: the last /* or */ on it decides
        opens, closes = line.rfind('/*'), line.rfind('*/')
        if opens > closes:
            in_comment = True
        elif closes >= 0:
            in_comment = False
        if was_in or (cov is not None and i not in cov):
            continue   # a comment's continuation line ("... 1 thread ...") is not code
        # comments, preprocessor lines and messages are not behaviour
        if not s or s.startswith(('//', '/*', '*', '#')) or 'printf' in s or 'miles_error(' in s or '"' in s:
            continue
        code = line.split('/*')[0]
        for pat, rep in OPS:
            for m in re.finditer(pat, code):
                if rep is None:
                    v = float(m.group(1))
                    if v == 0:
                        continue
                    new = code[:m.start(1)] + repr(v * 1.01) + code[m.end(1):]
                else:
                    new = code[:m.start()] + rep + code[m.end():]
                res.append((i, new + line[len(code):]))
    return res


def run(cmd, cwd, **kw):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, **kw)


def run_test(cmd, cwd, env, timeout):
    """A test run in its own process group, killed whole on a timeout: a mutant
    that loops forever inside a tool a test script started must not outlive
    the test (one did, for over an hour, taking a core)."""
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise


def make_tree(repo, tree):
    """A worktree of HEAD with the uncommitted changes and new files, built."""
    print(f'mutate: preparing {tree} (worktree of HEAD + uncommitted changes, make all tests)', flush=True)
    r = run(['git', 'worktree', 'add', '-q', '--detach', tree, 'HEAD'], repo, text=True)
    if r.returncode:
        sys.exit(f'mutate: git worktree add {tree}: {r.stderr.strip()}')
    diff = run(['git', 'diff', 'HEAD', '--binary'], repo).stdout
    if diff:
        r = subprocess.run(['git', 'apply', '--whitespace=nowarn'], cwd=tree, input=diff, capture_output=True)
        if r.returncode:
            sys.exit(f'mutate: applying the uncommitted changes: {r.stderr.decode().strip()}')
    new = run(['git', 'ls-files', '-z', '--others', '--exclude-standard'], repo).stdout.decode().split('\0')
    for p in filter(None, new):
        os.makedirs(os.path.dirname(os.path.join(tree, p)) or tree, exist_ok=True)
        shutil.copy2(os.path.join(repo, p), os.path.join(tree, p))
    if os.path.isdir(os.path.join(repo, 'models')):  # the pretrained weights (git-ignored)
        os.symlink(os.path.join(repo, 'models'), os.path.join(tree, 'models'))
    r = run(['make', '-s', '-j2', 'all', 'tests'], tree, text=True)
    if r.returncode:
        sys.exit(f'mutate: make in {tree} failed:\n{r.stderr[-2000:]}')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('src', help='a C file of the library or the tools, e.g. libmiles/metrics.c')
    ap.add_argument('tests', nargs='+', help='test programs under build/tests (e.g. test_metrics), '
                    'or scripts by path (e.g. tests/test_cli.sh, which run the tools)')
    ap.add_argument('--n', type=int, default=30, help='mutants to try (default 30)')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--lines', help='only these lines, comma-separated')
    ap.add_argument('--timeout', type=int, default=120, help='seconds per test run (a hang counts as caught)')
    ap.add_argument('--tree', default='/tmp/miles-mutation')
    ap.add_argument('--fresh', action='store_true', help='remove and rebuild the scratch tree first')
    a = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if a.fresh and os.path.exists(a.tree):
        run(['git', 'worktree', 'remove', '--force', a.tree], repo)
        shutil.rmtree(a.tree, ignore_errors=True)
    if not os.path.exists(a.tree):
        make_tree(repo, a.tree)
    path = os.path.join(a.tree, a.src)
    if not os.path.isfile(path):
        sys.exit(f'mutate: no {a.src} in {a.tree}')
    orig = open(path).read()
    lines = orig.split('\n')
    gcov = os.path.join(repo, 'build-cov', 'coverage', os.path.basename(a.src) + '.gcov')
    cov = covered_lines(gcov) if os.path.exists(gcov) else None
    ms = mutants(lines, cov)
    if a.lines:
        keep = {int(x) for x in a.lines.split(',')}
        ms = [m for m in ms if m[0] in keep]
    random.Random(a.seed).shuffle(ms)
    ms = ms[:a.n]
    print(f'mutate: {a.src}: {len(ms)} mutants{" on covered lines" if cov is not None else ""}; '
          f'tests: {" ".join(a.tests)}', flush=True)
    targets = [t if '/' in t else 'build/tests/' + t for t in a.tests]
    progs = [t for t in targets if not t.endswith('.sh')]   # what make builds
    env = dict(os.environ, MILES_BIN=os.path.join(a.tree, 'build', 'bin'))
    # the tests must pass before anything is changed, or every mutant looks caught
    for t in targets:
        if run_test([t], a.tree, env, a.timeout):
            sys.exit(f'mutate: {t} fails in {a.tree} without any mutation (stale tree? --fresh rebuilds it)')
    survived, killed, broken = [], 0, 0
    try:
        for k, (ln, new) in enumerate(ms):
            mut = lines[:]
            mut[ln - 1] = new
            open(path, 'w').write('\n'.join(mut))
            t0 = time.time()
            # `all` too: test_serve, test_data, test_train ... run the tools (MILES_BIN)
            if run(['make', '-s', '-j2', 'all'] + progs, a.tree).returncode:
                broken += 1
                print(f'[{k + 1}/{len(ms)}] line {ln}: does not build', flush=True)
                continue
            dead = False
            for t in targets:
                try:
                    if run_test([t], a.tree, env, a.timeout):
                        dead = True
                        break
                except subprocess.TimeoutExpired:
                    dead = True
                    break
            if dead:
                killed += 1
            else:
                survived.append((ln, lines[ln - 1].strip(), new.strip()))
            print(f'[{k + 1}/{len(ms)}] line {ln}: {"caught" if dead else "SURVIVED"} ({time.time() - t0:.0f} s)',
                  flush=True)
    finally:
        open(path, 'w').write(orig)
        run(['make', '-s', '-j2', 'all'] + progs, a.tree)
    print(f'\n{a.src}: {killed} caught, {len(survived)} survived, {broken} did not build')
    for ln, o, n in survived:
        print(f'  line {ln}:\n    - {o}\n    + {n}')


if __name__ == '__main__':
    main()
