# W8 memory: open N idle keep-alive HTTP connections to 127.0.0.1:PORT
# (each sends one request and reads its response, then stays open), print
# "open N", wait for a line on stdin, then close them all.
#   python3 bench/http_idle.py PORT N
import socket
import sys

port, n = int(sys.argv[1]), int(sys.argv[2])
req = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
conns = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(req)
    got = b""
    while b"hello" not in got:
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("connection %d closed by the server" % i)
        got += chunk
    conns.append(s)
print("open", len(conns), flush=True)
sys.stdin.readline()
for s in conns:
    s.close()
