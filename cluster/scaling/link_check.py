"""Raw TCP throughput of one shaped link, to show what `tc tbf` actually lets through.
usage: link_check.py serve PORT | link_check.py send HOST PORT MEGABYTES  (the sender prints Gbit/s)"""
import socket, sys, time

if sys.argv[1] == "serve":
    server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", int(sys.argv[2]))); server.listen(1)
    connection, _ = server.accept()
    while connection.recv(1 << 20):
        pass
    connection.sendall(b"k"); connection.close()
else:
    host, port, megabytes = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    for _ in range(50):
        try:
            connection = socket.create_connection((host, port)); break
        except OSError:
            time.sleep(0.1)
    block = b"\0" * (1 << 20)
    start = time.perf_counter()
    for _ in range(megabytes):
        connection.sendall(block)
    connection.shutdown(socket.SHUT_WR); connection.recv(1)
    seconds = time.perf_counter() - start
    print(f"{megabytes * 8 * (1 << 20) / seconds / 1e9:.3f}")
