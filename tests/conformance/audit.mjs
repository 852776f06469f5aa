// The GraphQL over HTTP spec's audit suite (graphql-http's `auditServer`)
// against a running gateway. Usage: node audit.mjs URL API_KEY
// Prints one JSON array: every audit's id, name and status ("ok", "warn",
// "notice" or "error"), and for the others the reason and the answer seen.
import { auditServer } from 'graphql-http';

const [url, key] = process.argv.slice(2);
if (!url || !key) {
  console.error('usage: node audit.mjs URL API_KEY');
  process.exit(2);
}
// Every audit request carries the credential: the gateway answers 401
// before reading anything of a request without one.
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers || {});
  headers.set('X-Api-Key', key);
  return fetch(input, { ...init, headers });
};
const results = [];
for (const result of await auditServer({ url, fetchFn })) {
  const entry = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    entry.reason = result.reason;
    try {
      entry.answer = { status: result.response.status, body: await result.response.text() };
    } catch {
      // The answer was read by the audit already.
    }
  }
  results.push(entry);
}
console.log(JSON.stringify(results));
