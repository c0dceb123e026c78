#!/usr/bin/env python3
"""order_app: a minimal nats-sidecar app in Python.

Connects to the sidecar's Unix socket, prints every order event it is
given and acknowledges it (a payload that is not JSON is rejected, so the
sidecar dead-letters it), sends heartbeats while idle, and exits when the
sidecar drains.

    python3 order_app.py [--socket PATH] [--proto PATH] [--capacity N]

Needs only Debian packages: python3-protobuf and protobuf-compiler. The
message classes are generated from channel.proto with protoc each time
the app starts, into a temporary directory, so no generated code is kept
anywhere. --proto defaults to proto/channel.proto of the source tree this
file is in.
"""

import argparse
import importlib
import json
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def load_channel_pb2(proto):
    """Compiles |proto| with protoc and imports the module it makes."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(["protoc", "--proto_path", os.path.dirname(proto),
                        "--python_out", out, os.path.basename(proto)],
                       check=True)
        sys.path.insert(0, out)
        try:
            return importlib.import_module("channel_pb2")
        finally:
            sys.path.remove(out)


def connect(path):
    """Connects to the sidecar, waiting for it with a growing delay: it
    may start after the app."""
    delay = 0.1
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError as e:
            sock.close()
            print(f"order_app: {path}: {e.strerror}; retrying",
                  file=sys.stderr, flush=True)
            time.sleep(delay)
            delay = min(delay * 2, 5)


class Channel:
    """Frames on the socket: a 4-byte big-endian length, then a Frame."""

    def __init__(self, path, pb):
        self.pb = pb
        self.sock = connect(path)
        self.buf = b""
        self.last_sent = time.monotonic()

    def send(self, **body):
        data = self.pb.Frame(**body).SerializeToString()
        self.sock.sendall(struct.pack(">I", len(data)) + data)
        self.last_sent = time.monotonic()

    def receive(self, timeout):
        """The next Frame, or None if none came within |timeout| s."""
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack(">I", self.buf[:4])
                if len(self.buf) >= 4 + n:
                    frame = self.pb.Frame.FromString(self.buf[4:4 + n])
                    self.buf = self.buf[4 + n:]
                    return frame
            if not select.select([self.sock], [], [], timeout)[0]:
                return None
            chunk = self.sock.recv(65536)
            if not chunk:
                sys.exit("order_app: the sidecar closed the connection")
            self.buf += chunk


def handle(ch, pb, d):
    """Prints one order event and answers it."""
    try:
        order = json.loads(d.payload)
    except ValueError:
        ch.send(result=pb.Result(id=d.id, outcome=pb.Result.REJECT,
                                 reason="payload is not JSON"))
        print(f"{d.subject} seq={d.stream_sequence}: not JSON, rejected",
              flush=True)
        return
    print(f"{d.subject} seq={d.stream_sequence} attempt={d.attempt} "
          f"id={d.message_id}: {json.dumps(order, sort_keys=True)}",
          flush=True)
    ch.send(result=pb.Result(id=d.id, outcome=pb.Result.ACK))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", default=os.environ.get(
        "NATS_SIDECAR_SOCKET", "/run/nats-sidecar/app.sock"))
    ap.add_argument("--proto", default=os.path.join(
        HERE, "..", "..", "proto", "channel.proto"))
    ap.add_argument("--capacity", type=int, default=8)
    args = ap.parse_args()

    pb = load_channel_pb2(args.proto)
    ch = Channel(args.socket, pb)
    ch.send(hello=pb.Hello(protocol_version=1, capacity=args.capacity,
                           app_name="order_app.py"))
    welcome = ch.receive(timeout=5)
    if welcome is None or welcome.WhichOneof("body") != "welcome":
        sys.exit(f"order_app: no welcome from the sidecar: {welcome}")
    heartbeat = welcome.welcome.heartbeat_interval_ms / 1000 or None

    while True:
        frame = ch.receive(timeout=heartbeat / 2 if heartbeat else None)
        if heartbeat and time.monotonic() - ch.last_sent >= heartbeat:
            ch.send(heartbeat=pb.Heartbeat())
        kind = frame.WhichOneof("body") if frame else None
        if kind == "delivery":
            handle(ch, pb, frame.delivery)
        elif kind == "drain":
            print("draining: every order is answered, exiting", flush=True)
            return 0
        elif kind == "error":
            print(f"order_app: sidecar error: {frame.error.message}",
                  file=sys.stderr, flush=True)
            if frame.error.fatal:
                return 1


if __name__ == "__main__":
    sys.exit(main())
