"""An unmodified MCP client (the official Python SDK) calling a tool through
`etdi proxy` over Streamable HTTP with a bearer token.

Run by etdi-cli/tests/proxy.rs:

    ETDI_PROXY_TOKEN=<bearer token> proxy_client_check.py <endpoint url> <tool> <arguments as JSON>

(The token travels in the environment, not on the command line where other
processes could read it; an empty token sends no `Authorization` header.)
For HTTPS, `ETDI_PROXY_CA` names the CA bundle to trust, and
`ETDI_PROXY_CLIENT_CERT` / `ETDI_PROXY_CLIENT_KEY` a client certificate and
key (PEM) for mutual TLS.

It initializes, lists the tools and calls <tool> once, then prints one JSON
object on stdout: the ETDI capability, the listed tools (with `_meta`), and
either the call's result (`{"call": {"isError", "text"}}`) or the JSON-RPC
error it got (`{"error": {"code", "message", "data"}}`). Any unexpected
failure exits non-zero with the traceback on stderr.
"""

import asyncio
import json
import os
import ssl
import sys

import httpx2
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client


async def main(url, token, tool, arguments):
    out = {}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    verify = True
    if os.environ.get("ETDI_PROXY_CA"):
        verify = ssl.create_default_context(cafile=os.environ["ETDI_PROXY_CA"])
        if os.environ.get("ETDI_PROXY_CLIENT_CERT"):
            verify.load_cert_chain(os.environ["ETDI_PROXY_CLIENT_CERT"], os.environ["ETDI_PROXY_CLIENT_KEY"])
    async with httpx2.AsyncClient(headers=headers, timeout=30, verify=verify) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                caps = init.capabilities.model_dump(by_alias=True, exclude_none=True)
                out["capability"] = (caps.get("experimental") or {}).get("dev.etdi")
                listed = await session.list_tools()
                out["tools"] = [
                    t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in listed.tools
                ]
                try:
                    result = await session.call_tool(tool, arguments)
                    out["call"] = {
                        "isError": bool(result.is_error),
                        "text": [c.text for c in result.content if getattr(c, "type", None) == "text"],
                    }
                except MCPError as e:
                    out["error"] = {"code": e.code, "message": e.message, "data": e.data}
    return out


if __name__ == "__main__":
    if len(sys.argv) != 4 or "ETDI_PROXY_TOKEN" not in os.environ:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    token = os.environ["ETDI_PROXY_TOKEN"]
    result = asyncio.run(main(sys.argv[1], token, sys.argv[2], json.loads(sys.argv[3])))
    print(json.dumps(result))
