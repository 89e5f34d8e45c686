// Reads each query string given as an argument as Node.js reads it, and
// prints one JSON line per query: the names and values that
// node:querystring (Express 5's default "simple" query parser) and
// URLSearchParams (the WHATWG URL of Node's http servers) find.
import querystring from "node:querystring";

for (const q of process.argv.slice(2)) {
  const qs = querystring.parse(q);
  const usp = [...new URLSearchParams(q)];
  console.log(JSON.stringify({
    query: q,
    querystring: Object.entries(qs).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => [k, x])),
    urlsearchparams: usp,
  }));
}
