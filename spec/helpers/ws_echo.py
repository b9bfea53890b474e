# A websocket server for spec/ngx_drivers_spec.lua (python3-websockets,
# Debian's): `python3 ws_echo.py PORT [CERT KEY]`, on 127.0.0.1; with a
# certificate and key, over TLS (wss://). By path:
#   /echo    echoes every text and binary message; "bye" closes (1000, "bye")
#   /ping    pings the client with b"hi", then says "got pong" once answered
#   /silent  reads, never answers
# websockets answers the client's pings with pongs itself.
import asyncio
import ssl
import sys

import websockets


async def handler(ws, path):
    if path == "/ping":
        waiter = await ws.ping(b"hi")
        await waiter
        await ws.send("got pong")
        async for _ in ws:
            pass
    elif path == "/silent":
        async for _ in ws:
            pass
    else:
        async for msg in ws:
            if msg == "bye":
                await ws.close(code=1000, reason="bye")
                return
            await ws.send(msg)


async def main():
    port = int(sys.argv[1])
    tls = None
    if len(sys.argv) > 3:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(sys.argv[2], sys.argv[3])
    async with websockets.serve(handler, "127.0.0.1", port, ping_interval=None,
                                max_size=2 ** 20, ssl=tls):
        await asyncio.Future()


asyncio.run(main())
