// jsonparse.mjs reads HTTP bodies the way an MCP server written in
// JavaScript does (the TypeScript SDK: the body decoded as UTF-8 by the
// WHATWG decoder, as Request.json() and body-parser do, then JSON.parse), and
// prints one JSON line per body file:
//
//   {"file":..., "ok":true, "batch":false, "messages":[{"method":..., "name":..., "uri":..., "arguments":..., "wellFormed":true}]}
//   {"file":..., "ok":false, "error":"..."}
//
// Each message holds its method and params.name, params.uri and
// params.arguments as parsed, a member left out when absent. wellFormed is
// false when one of those strings (keys included) holds a lone UTF-16
// surrogate, which JSON.stringify can only write as an escape that other
// readers turn into U+FFFD. A number JSON.parse makes infinite is written
// as {"\u0000nonfinite":"Infinity"} (JSON.stringify would write null).
//
// Usage: node jsonparse.mjs FILE_OR_DIR... (a directory stands for the
// files in it, in name order). No npm packages.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

// Not fatal: bytes that are not UTF-8 become U+FFFD, and a leading BOM is
// dropped, as in Request.json().
const decoder = new TextDecoder('utf-8');

function bodyFiles(args) {
  const out = [];
  for (const arg of args) {
    if (statSync(arg).isDirectory()) {
      for (const name of readdirSync(arg).sort()) {
        const path = join(arg, name);
        if (statSync(path).isFile()) out.push(path);
      }
    } else {
      out.push(arg);
    }
  }
  return out;
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// wellFormed reports whether every string in v, object keys included, is
// well-formed UTF-16.
function wellFormed(v) {
  if (typeof v === 'string') return v.isWellFormed();
  if (Array.isArray(v)) return v.every(wellFormed);
  if (isObject(v)) return Object.entries(v).every(([k, x]) => k.isWellFormed() && wellFormed(x));
  return true;
}

function reading(m) {
  const r = {};
  if (!isObject(m)) return r;
  if (Object.hasOwn(m, 'method')) r.method = m.method;
  const p = m.params;
  if (Object.hasOwn(m, 'params') && isObject(p)) {
    for (const k of ['name', 'uri', 'arguments']) {
      if (Object.hasOwn(p, k)) r[k] = p[k];
    }
  }
  r.wellFormed = wellFormed([r.method, r.name, r.uri, r.arguments]);
  return r;
}

function nonFinite(key, value) {
  if (typeof value === 'number' && !Number.isFinite(value)) return { '\u0000nonfinite': String(value) };
  return value;
}

for (const file of bodyFiles(process.argv.slice(2))) {
  let line;
  try {
    const parsed = JSON.parse(decoder.decode(readFileSync(file)));
    const batch = Array.isArray(parsed);
    line = { file, ok: true, batch, messages: (batch ? parsed : [parsed]).map(reading) };
  } catch (e) {
    line = { file, ok: false, error: String(e) };
  }
  process.stdout.write(JSON.stringify(line, nonFinite) + '\n');
}
