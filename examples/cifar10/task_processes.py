"""Runs the tasks of a local cluster as child processes (no flags, no TF).

Used by the launcher (`python -m examples.cifar10.local_cluster`) and by the
cluster tests. Every task is one process; the tasks talk over loopback:

* Ports are chosen at run time (`free_ports`: the kernel picks an unused
  port on 127.0.0.1), and every address in the cluster is 127.0.0.1.
* TensorFlow's gRPC server always listens on the wildcard address 0.0.0.0
  (hard-coded in its grpc_server_lib). Where the machine allows it
  (`unshare -n` works: Linux, root or user namespaces), `Namespace` holds a
  private network namespace whose only interface is the loopback, and every
  task runs inside it (`nsenter --net=...`), so nothing outside this machine
  can reach a task. Elsewhere the tasks run in the host's network and the
  cluster addresses are still loopback-only.
* Every task has a lifetime (`timeout -s KILL`): a task that hangs dies.
  `Task.kill` and `Cluster.close` kill by process id, also on failure.
* Each line a task writes is echoed with its role as prefix (`[worker1] ...`)
  and kept, so a caller can wait for a line (`Task.wait_for`).
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

LOOPBACK = '127.0.0.1'


def free_ports(count):
  """`count` distinct ports on 127.0.0.1 that were free a moment ago."""
  sockets = []
  try:
    for _ in range(count):
      s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
      s.bind((LOOPBACK, 0))
      sockets.append(s)
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def loopback_addresses(count):
  return ['%s:%d' % (LOOPBACK, port) for port in free_ports(count)]


class Namespace:
  """A private network namespace with only `lo` up, held by a sleeper."""

  def __init__(self, lifetime_s):
    self._process = None
    if not (shutil.which('unshare') and shutil.which('nsenter')):
      return
    try:
      process = subprocess.Popen(
          ['timeout', '-s', 'KILL', str(int(lifetime_s)), 'unshare', '-n',
           'sh', '-c', 'ip link set lo up 2>/dev/null || '
           'ifconfig lo up 2>/dev/null; echo up; exec sleep %d'
           % int(lifetime_s)], stdout=subprocess.PIPE,
          stderr=subprocess.DEVNULL, text=True)
    except OSError:
      return
    if process.stdout.readline().strip() != 'up':
      process.kill()
      process.wait()
      return
    self._process = process

  @property
  def isolated(self):
    return self._process is not None

  def prefix(self):
    """Command prefix that runs a command inside the namespace."""
    if not self.isolated:
      return []
    # `timeout` (the namespace holder) runs unshare as its child.
    holder = _child_pid(self._process.pid) or self._process.pid
    holder = _child_pid(holder) or holder
    return ['nsenter', '--net=/proc/%d/ns/net' % holder]

  def close(self):
    if self._process is not None:
      self._process.kill()
      self._process.wait()
      self._process = None


def _child_pid(pid):
  try:
    with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
      children = f.read().split()
  except OSError:
    return None
  return int(children[0]) if children else None


class Task:
  """One running task: its process, its prefixed output, its lines."""

  def __init__(self, role, argv, env=None, lifetime_s=300, prefix=(),
               echo=True, cwd=None):
    self.role = role
    self.lines = []
    self._echo = echo
    self._cond = threading.Condition()
    command = (['timeout', '-s', 'KILL', str(int(lifetime_s))] +
               list(prefix) + list(argv))
    self.process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, bufsize=1,
        start_new_session=True)
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self):
    for line in self.process.stdout:
      line = line.rstrip('\n')
      if self._echo:
        sys.stdout.write('[%s] %s\n' % (self.role, line))
        sys.stdout.flush()
      with self._cond:
        self.lines.append(line)
        self._cond.notify_all()
    with self._cond:
      self._cond.notify_all()

  def wait_for(self, pattern, timeout_s):
    """Returns the first match of regex `pattern` in the task's output.

    Raises:
      TimeoutError: no such line within `timeout_s`, or the task ended
        without one (the message holds the task's last lines).
    """
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout_s
    seen = 0
    with self._cond:
      while True:
        for line in self.lines[seen:]:
          match = regex.search(line)
          if match:
            return match
        seen = len(self.lines)
        left = deadline - time.monotonic()
        ended = self.process.poll() is not None and not self._reader.is_alive()
        if left <= 0 or ended:
          raise TimeoutError('%s: no line matching %r %s; last lines:\n%s' % (
              self.role, pattern,
              'before it exited' if ended else 'within %g s' % timeout_s,
              '\n'.join(self.lines[-30:])))
        self._cond.wait(min(left, 0.5))

  def wait(self, timeout_s):
    """Waits for the exit (killing it after `timeout_s`); returns the code."""
    try:
      code = self.process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
      self.kill()
      raise TimeoutError('%s did not finish within %g s; last lines:\n%s' % (
          self.role, timeout_s, '\n'.join(self.lines[-30:])))
    self._reader.join(5)
    return code

  def output(self):
    return '\n'.join(self.lines)

  def kill(self):
    """SIGKILLs the task's process group (the task and its `timeout`)."""
    if self.process.poll() is None:
      try:
        os.killpg(self.process.pid, signal.SIGKILL)
      except ProcessLookupError:
        pass
    self.process.wait()
    self._reader.join(5)


class Cluster:
  """Tasks started in one (optionally isolated) loopback network."""

  def __init__(self, lifetime_s=300, env=None, echo=True, cwd=None):
    self.lifetime_s = lifetime_s
    self.env = env
    self.echo = echo
    self.cwd = cwd
    self.namespace = Namespace(lifetime_s + 30)
    self.tasks = []

  def start(self, role, argv, env=None, lifetime_s=None):
    task = Task(role, argv, env=env or self.env,
                lifetime_s=lifetime_s or self.lifetime_s,
                prefix=self.namespace.prefix(), echo=self.echo, cwd=self.cwd)
    self.tasks.append(task)
    return task

  def close(self):
    for task in self.tasks:
      task.kill()
    self.namespace.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.close()
