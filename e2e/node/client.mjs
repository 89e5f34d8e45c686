// An MCP client built on the TypeScript SDK, for mcpauthz's end-to-end
// tests: it connects to a Streamable HTTP endpoint, lists the tools, makes
// the calls it is given, and prints one JSON summary on stdout for the Go
// test to assert on.
//
//   MCPAUTHZ_TOKEN=... node client.mjs URL '[{"name":"echo","arguments":{"message":"hi"}}]'
//
// The token (optional) goes in every request's Authorization header, as a
// client that already holds one sends it. Every call runs on the same
// session, in order, whatever the previous one answered, so the summary
// shows whether a denial left the session usable.
//
// The summary:
//   {"server": {"name", "version"}, "protocolVersion", "sessionId",
//    "tools": [names in the order listed],
//    "calls": [{"name", "result": CallToolResult} | {"name", "error": {"code", "message", "data"}}]}
// A failure to connect or list prints {"fatal": message} and exits 1.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";

const [url, plan = "[]"] = process.argv.slice(2);
if (!url) {
  console.error("usage: node client.mjs URL [CALLS_JSON]");
  process.exit(2);
}
const calls = JSON.parse(plan);

const headers = {};
if (process.env.MCPAUTHZ_TOKEN) {
  headers.Authorization = `Bearer ${process.env.MCPAUTHZ_TOKEN}`;
}
const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
const client = new Client({ name: "mcpauthz-e2e", version: "1.0.0" });
// Each request gets a bounded wait: a proxy that swallowed an answer fails
// the test instead of hanging it.
const options = { timeout: 20_000 };

function errorSummary(err) {
  if (err instanceof McpError) {
    return { code: err.code, message: err.message, data: err.data };
  }
  return { message: String(err?.message ?? err) };
}

const summary = {};
try {
  await client.connect(transport, options);
  summary.server = client.getServerVersion();
  summary.protocolVersion = transport.protocolVersion;
  summary.sessionId = transport.sessionId;
  const { tools } = await client.listTools({}, options);
  summary.tools = tools.map((t) => t.name);
  summary.calls = [];
  for (const c of calls) {
    try {
      const result = await client.callTool({ name: c.name, arguments: c.arguments ?? {} }, undefined, options);
      summary.calls.push({ name: c.name, result });
    } catch (err) {
      summary.calls.push({ name: c.name, error: errorSummary(err) });
    }
  }
  await transport.terminateSession();
  await client.close();
} catch (err) {
  summary.fatal = errorSummary(err).message;
  console.log(JSON.stringify(summary));
  process.exit(1);
}
console.log(JSON.stringify(summary));
