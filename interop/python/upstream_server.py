"""A small MCP server that knows nothing about ETDI, written with the official
Python SDK (PyPI `mcp`, its low-level `Server`). `etdi proxy` is put in front
of it by etdi-cli/tests/proxy.rs.

    upstream_server.py stdio --description-file F --record R
    upstream_server.py http  --description-file F --record R

It offers `get_forecast(city)`, whose description is read from the file F on
every `tools/list`, so the test can change it (a rug pull), and
`set_description(text)`, which writes F itself and then sends
`notifications/tools/list_changed` to its client, as a server changing its
tools at run time does. R records what the server received:

* at start, one JSON line `{"start": {"argv": [...], "env": {...}}}`;
* over HTTP, one JSON line `{"headers": {...}}` per HTTP request;
* per call, one JSON line `{"call": {"name": ..., "arguments": ...}}`.

In `http` mode it serves Streamable HTTP on 127.0.0.1 at a free port, prints
`{"url": "http://127.0.0.1:<port>/mcp"}` once listening, and stops when its
standard input closes. In `stdio` mode it stops when the client disconnects.
"""

import argparse
import json
import os
import socket
import sys
import threading

import anyio
import mcp_types as types
from mcp.server import Server

LOCK = threading.Lock()


def record(path, entry):
    with LOCK, open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()
        os.fsync(f.fileno())


def build(description_file, record_file):
    async def list_tools(ctx, params):
        with open(description_file, encoding="utf-8") as f:
            description = f.read().strip()
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name="get_forecast",
                    description=description,
                    input_schema={
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                ),
                types.Tool(
                    name="set_description",
                    description="Changes the description of get_forecast.",
                    input_schema={
                        "type": "object",
                        "properties": {"text": {"type": "string"}},
                        "required": ["text"],
                    },
                ),
            ]
        )

    async def call_tool(ctx, params):
        args = params.arguments or {}
        record(record_file, {"call": {"name": params.name, "arguments": args}})
        if params.name == "set_description":
            with open(description_file, "w", encoding="utf-8") as f:
                f.write(args.get("text", ""))
            await ctx.session.send_tool_list_changed()
            return types.CallToolResult(content=[types.TextContent(type="text", text="description changed")])
        if params.name != "get_forecast":
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=f"no tool {params.name}")],
                is_error=True,
            )
        city = args.get("city", "?")
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=f"Forecast for {city}: sunny, 21 C (from upstream pid {os.getpid()})")]
        )

    return Server("weather-upstream", version="1.0.0", on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_stdio(server):
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


class RecordHeaders:
    """ASGI middleware writing every HTTP request's headers to the record."""

    def __init__(self, app, record_file):
        self.app = app
        self.record_file = record_file

    async def __call__(self, scope, receive, send):
        if scope.get("type") == "http":
            headers = {}
            for k, v in scope.get("headers", []):
                headers.setdefault(k.decode("latin-1").lower(), []).append(v.decode("latin-1"))
            record(self.record_file, {"headers": headers})
        await self.app(scope, receive, send)


async def serve_http(server, record_file):
    import uvicorn

    app = RecordHeaders(server.streamable_http_app(), record_file)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    web = uvicorn.Server(config)

    async def stop_when_stdin_closes():
        await anyio.to_thread.run_sync(sys.stdin.read)
        web.should_exit = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(web.serve, [sock])
        while not web.started:
            await anyio.sleep(0.01)
        print(json.dumps({"url": f"http://127.0.0.1:{port}/mcp"}), flush=True)
        tg.start_soon(stop_when_stdin_closes)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["stdio", "http"])
    p.add_argument("--description-file", required=True)
    p.add_argument("--record", required=True)
    a = p.parse_args()
    record(a.record, {"start": {"argv": sys.argv, "env": dict(os.environ)}})
    server = build(a.description_file, a.record)
    if a.mode == "stdio":
        anyio.run(serve_stdio, server)
    else:
        anyio.run(serve_http, server, a.record)


if __name__ == "__main__":
    main()
