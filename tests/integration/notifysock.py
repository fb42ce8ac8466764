"""A fake systemd notify socket for runnerd's integration tests (stdlib only).

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from notifysock import NotifySocket
    with NotifySocket(tmpdir) as ns:
        env = dict(os.environ, NOTIFY_SOCKET=ns.path)          # or WATCHDOG_USEC=...
        proc = subprocess.Popen([runnerd, ...], env=env)
        ns.wait_for("READY=1", timeout=10)
        proc.send_signal(signal.SIGHUP)
        msg = ns.wait_for("RELOADING=1", timeout=10)           # the whole datagram
        assert "MONOTONIC_USEC=" in msg
        ns.wait_for("READY=1", timeout=10)                     # the next READY after it

Every datagram is one message of KEY=VALUE lines; ns.messages keeps them all in order.
Pass abstract=True to bind in the abstract namespace ("@name", as systemd may do).
"""
import os
import socket
import time


class NotifySocket:
    def __init__(self, tmpdir, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            self.path = "@runnerd-test-notify-%d-%d" % (os.getpid(), id(self))
            self.sock.bind("\0" + self.path[1:])
        else:
            self.path = os.path.join(tmpdir, "notify.sock")
            if os.path.exists(self.path):
                os.unlink(self.path)
            self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.messages = []
        self._seen = 0  # wait_for looks only at messages after the last one it returned

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()
        if not self.path.startswith("@") and os.path.exists(self.path):
            os.unlink(self.path)

    def poll(self):
        """Read every waiting datagram into self.messages."""
        while True:
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, BlockingIOError):
                return
            self.messages.append(data.decode("utf-8", "replace"))

    @staticmethod
    def fields(msg):
        """{"READY": "1", "STATUS": "..."} of one message."""
        out = {}
        for line in msg.split("\n"):
            if "=" in line:
                k, v = line.split("=", 1)
                out[k] = v
        return out

    def wait_for(self, line, timeout=10.0):
        """Wait for the next message (after the one last returned) that has `line` as one
        of its lines ("READY=1") or, if `line` has no '=', a key of that name ("STATUS").
        Returns the whole message; raises AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            for i in range(self._seen, len(self.messages)):
                msg = self.messages[i]
                lines = msg.split("\n")
                if line in lines or ("=" not in line and line in self.fields(msg)):
                    self._seen = i + 1
                    return msg
            if time.monotonic() > deadline:
                raise AssertionError("no %r on the notify socket within %.1fs; got %r"
                                     % (line, timeout, self.messages))

    def count(self, line):
        self.poll()
        return sum(1 for m in self.messages if line in m.split("\n"))
