"""An unmodified MCP client (the official Python SDK) against an ETDI server.

Run by etdi-server/tests/python_client.rs:

    mcp_client_check.py stdio <server command> [args...]
    mcp_client_check.py http <endpoint url> <bearer token>

It initializes, lists the tools, calls `echo` (allowed) and `write` (denied
by the server's policy), and prints one JSON object on stdout with what it
saw; the Rust test asserts on it. Any unexpected failure exits non-zero with
the traceback on stderr.
"""

import asyncio
import json
import sys

import httpx2
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client


async def exercise(read, write):
    out = {}
    async with ClientSession(read, write) as session:
        init = await session.initialize()
        caps = init.capabilities.model_dump(by_alias=True, exclude_none=True)
        out["capability"] = (caps.get("experimental") or {}).get("dev.etdi")
        listed = await session.list_tools()
        out["tools"] = [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in listed.tools]
        allowed = await session.call_tool("echo", {"text": "hello from python"})
        out["allowed"] = {
            "isError": bool(allowed.is_error),
            "text": [c.text for c in allowed.content if getattr(c, "type", None) == "text"],
        }
        try:
            denied = await session.call_tool("write", {"text": "not allowed"})
            out["denied"] = {"unexpected_result": denied.model_dump(by_alias=True, mode="json")}
        except MCPError as e:
            out["denied"] = {"code": e.code, "message": e.message, "data": e.data}
    return out


async def main(argv):
    if len(argv) >= 2 and argv[0] == "stdio":
        params = StdioServerParameters(command=argv[1], args=argv[2:])
        async with stdio_client(params) as (read, write):
            return await exercise(read, write)
    if len(argv) == 3 and argv[0] == "http":
        url, token = argv[1], argv[2]
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            async with streamable_http_client(url, http_client=http) as streams:
                read, write = streams[0], streams[1]
                return await exercise(read, write)
    print(__doc__, file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1:]))
    print(json.dumps(result))
