# A stand-in database member for the end-to-end tests, run by the sandbox
# kubelet as the pod's process. Like a real engine it reads its
# configuration file at start: when the engine's TLS setting is present it
# serves the mounted certificate (POD_DIR/etc/dbops/tls/tls.crt + tls.key)
# on the TLS port; it serves plain TCP on the plain port unless that is the
# same port. Without its certificate while TLS is configured, it exits 1
# (the pod crashes), as a real server would.
#
# Answers on both: "ruok" -> "imok", HTTP GET -> 200, anything else echoed.
#
# usage: python3 fake_server.py CONFIG_FILE TLS_MARKER PLAIN_PORT TLS_PORT
import os
import socket
import ssl
import sys
import threading

config_file, marker, plain_port, tls_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ip = os.environ["POD_IP"]
tls_dir = os.path.join(os.environ["POD_DIR"], "etc/dbops/tls")


def tls_configured():
    with open(config_file) as f:
        for line in f:
            key = line.strip().split("=", 1)[0].strip()
            if key == marker:
                return True
    return False


def answer(conn):
    try:
        data = conn.recv(4096)
        if data.startswith(b"ruok"):
            conn.sendall(b"imok")
        elif data.startswith(b"GET") or data.startswith(b"HEAD"):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        elif data:
            conn.sendall(data)
    except (OSError, ssl.SSLError):
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def serve(port, context):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((ip, port))
    listener.listen(64)
    while True:
        conn, _ = listener.accept()
        if context is not None:
            try:
                conn.settimeout(5)
                conn = context.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError):
                conn.close()
                continue
        threading.Thread(target=answer, args=(conn,), daemon=True).start()


threads = []
tls = tls_configured()
if tls:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(os.path.join(tls_dir, "tls.crt"), os.path.join(tls_dir, "tls.key"))
    except (OSError, ssl.SSLError) as e:
        print(f"TLS is configured ({marker}) but the certificate cannot be loaded: {e}", flush=True)
        sys.exit(1)
    threads.append(threading.Thread(target=serve, args=(tls_port, context), daemon=True))
if not (tls and tls_port == plain_port):
    threads.append(threading.Thread(target=serve, args=(plain_port, None), daemon=True))
print(f"serving on {ip}: plain {plain_port if not (tls and tls_port == plain_port) else '-'}, tls {tls_port if tls else '-'}", flush=True)
for t in threads:
    t.start()
for t in threads:
    t.join()
