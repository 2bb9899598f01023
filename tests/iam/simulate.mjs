// Evaluate a batch of IAM requests with @cloud-copilot/iam-simulate (AWS's evaluation logic: identity
// policies, permissions boundaries, resource and key policies, explicit deny first), in one Node process.
//
//   node tests/iam/simulate.mjs < batch.json > decisions.json
//
// The batch names every policy document once and the requests refer to them by id, so thousands of requests
// stay a small input:
//
//   {"policies": {"<id>": <policy document>, ...},
//    "requests": [{"principal": "<ARN>", "action": "s3:GetObject", "resource": "<ARN>", "account": "<resource's account>",
//                  "identity": ["<id>", ...], "boundary": ["<id>"] | [], "resourcePolicy": "<id>" | null,
//                  "context": {"aws:SecureTransport": "true", ...}}, ...]}
//
// Output: {"decisions": ["Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied" | "Error", ...], "errors": {"<index>": "..."},
// "ignoredContextKeys": {"<index>": [...]}, "seconds": <evaluation time>}, one decision per request in order. A
// request the simulator cannot evaluate (an unknown action, a resource the action does not take, an invalid
// policy) is an "Error" with its message, never a denial: the caller fails on it.
//
// The installed simulator is .ci/node's (npm ci from .ci/node/package-lock.json, by .ci/gitlab-ci-local.sh).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeDir = path.join(here, '..', '..', '.ci', 'node');
// Resolved from .ci/node/node_modules, whatever the working folder is.
const require = createRequire(path.join(nodeDir, 'package.json'));
const { runSimulation } = await import(require.resolve('@cloud-copilot/iam-simulate'));

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function named(policies, ids, prefix) {
  return (ids || []).map((id) => {
    if (!(id in policies)) throw new Error(`${prefix} policy '${id}' is not in the batch's policies`);
    return { name: id, policy: policies[id] };
  });
}

async function evaluate(policies, request) {
  const simulation = {
    request: {
      principal: request.principal,
      action: request.action,
      resource: { resource: request.resource, accountId: request.account },
      contextVariables: request.context || {},
    },
    identityPolicies: named(policies, request.identity, 'identity'),
    permissionBoundaryPolicies: request.boundary && request.boundary.length ? named(policies, request.boundary, 'boundary') : undefined,
    resourcePolicy: request.resourcePolicy ? policies[request.resourcePolicy] : undefined,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
  };
  const response = await runSimulation(simulation, { simulationMode: 'Strict' });
  if (response.resultType === 'error') {
    return { decision: 'Error', error: response.errors.message + ' ' + JSON.stringify(response.errors) };
  }
  const ignored = response.resultType === 'single' ? response.result.ignoredContextKeys || [] : [];
  return { decision: response.overallResult, ignored };
}

const batch = await readStdin();
const started = process.hrtime.bigint();
const decisions = [];
const errors = {};
const ignoredContextKeys = {};
for (const [index, request] of batch.requests.entries()) {
  let result;
  try {
    result = await evaluate(batch.policies, request);
  } catch (error) {
    result = { decision: 'Error', error: String(error && error.stack ? error.stack : error) };
  }
  decisions.push(result.decision);
  if (result.error) errors[index] = result.error;
  if (result.ignored && result.ignored.length) ignoredContextKeys[index] = result.ignored;
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
process.stdout.write(JSON.stringify({ decisions, errors, ignoredContextKeys, seconds }));
