// The plugin's behaviour per command: parse the invocation, ask the agent, apply the fail policy, shape the outcome.

import { type AddBody, AgentPath, addReplyOf, checkReplyOf, type DelBody, errorTextOf, statusReplyOf } from './agent-protocol.ts';
import type { AgentClient, AgentExchange } from './agent-client.ts';
import { CniError, CniErrorCode } from './cni-errors.ts';
import {
  type AddRequest,
  type CheckRequest,
  type CniEnvironment,
  type CniRequest,
  type DelRequest,
  parseRequest,
  type StatusRequest,
} from './cni-request.ts';
import {
  EMPTY_SUCCESS,
  errorOutcome,
  errorVersionOf,
  type PluginOutcome,
  passThroughOutcome,
  versionOutcome,
} from './cni-result.ts';
import type { PluginSettings } from './plugin-config.ts';

export type LogLine = (message: string) => void;

/** Injected by main.ts (real socket, log file) and by tests (fake agents, recorded lines). */
export interface PluginDependencies {
  agentFor(settings: PluginSettings): AgentClient;
  /** The log for one invocation; settings are null when the configuration could not be read. */
  logFor(settings: PluginSettings | null): LogLine;
}

type AttachedRequest = AddRequest | CheckRequest;

/**
 * The agent's 2xx reply read by `read`, or the CniError that stands for "the agent could not be asked": unreachable
 * (100), too slow (101), or an error status or unreadable reply (102).
 */
function answerOf<T>(exchange: AgentExchange, read: (text: string) => T | null, socket: string): T | CniError {
  switch (exchange.kind) {
    case 'unreachable':
      return new CniError(
        CniErrorCode.AGENT_UNREACHABLE,
        `meshlite agent unreachable at ${socket}`,
        `${exchange.reason}; is the meshlite agent running on this node?`,
      );
    case 'timeout':
      return new CniError(CniErrorCode.AGENT_TIMEOUT, `meshlite agent did not answer within ${exchange.afterMs} ms`, `socket ${socket}`);
    case 'answered': {
      if (exchange.status < 200 || exchange.status > 299) {
        return new CniError(CniErrorCode.AGENT_FAILED, `meshlite agent answered HTTP ${exchange.status}`, errorTextOf(exchange.body));
      }
      const reply = read(exchange.body);
      if (reply === null) {
        return new CniError(CniErrorCode.AGENT_FAILED, 'meshlite agent sent a reply the plugin cannot read', exchange.body.slice(0, 500));
      }
      return reply;
    }
  }
}

function describe(error: CniError): string {
  return error.details === '' ? error.message : `${error.message} (${error.details})`;
}

function attachedBody(request: AttachedRequest): AddBody {
  const { attachment, pod, ips } = request;
  return { containerId: attachment.containerId, netns: attachment.netns, ifName: attachment.ifName, namespace: pod.namespace, name: pod.name, ips };
}

async function add(request: AddRequest, agent: AgentClient, log: LogLine): Promise<PluginOutcome> {
  const passThrough = passThroughOutcome(request.prevResult, request.cniVersion);
  if (request.ips.length === 0) {
    // Interception goes by source IP: a pod without one has nothing to enroll, whatever the agent would say.
    log('prevResult lists no IP address; nothing to enroll');
    return passThrough;
  }
  const answer = answerOf(await agent.request(AgentPath.ADD, attachedBody(request)), addReplyOf, request.settings.agentSocket);
  if (!(answer instanceof CniError)) return passThrough;
  if (request.settings.failPolicy === 'open') {
    log(`${describe(answer)}; fail-open: the pod starts now and the agent enrolls it when its watch sees it`);
    return passThrough;
  }
  log(`${describe(answer)}; fail-closed: ADD fails and the runtime retries`);
  throw answer;
}

async function check(request: CheckRequest, agent: AgentClient, log: LogLine): Promise<PluginOutcome> {
  if (request.ips.length === 0) return EMPTY_SUCCESS;
  const answer = answerOf(await agent.request(AgentPath.CHECK, attachedBody(request)), checkReplyOf, request.settings.agentSocket);
  if (answer instanceof CniError) {
    if (request.settings.failPolicy === 'open') {
      log(`${describe(answer)}; fail-open: CHECK succeeds`);
      return EMPTY_SUCCESS;
    }
    log(`${describe(answer)}; fail-closed: CHECK fails`);
    throw answer;
  }
  if (answer.enrolled === answer.expected) return EMPTY_SUCCESS;
  // The agent was asked and disagrees: that is a finding about the pod, not an outage, so no policy softens it.
  const disagreement = new CniError(
    CniErrorCode.AGENT_DISAGREES,
    `meshlite agent reports the pod ${answer.enrolled ? 'enrolled but it should not be' : 'not enrolled but it should be'}`,
    answer.reason,
  );
  log(describe(disagreement));
  throw disagreement;
}

async function del(request: DelRequest, agent: AgentClient, log: LogLine): Promise<PluginOutcome> {
  const body: DelBody = { containerId: request.attachment.containerId, namespace: request.pod?.namespace ?? null, name: request.pod?.name ?? null };
  const answer = answerOf(await agent.request(AgentPath.DEL, body), () => true, request.settings.agentSocket);
  if (answer instanceof CniError) {
    const why = describe(answer);
    // DEL is idempotent and must not fail for a missing agent: the agent's pod watch drops the pod on its own.
    log(`${why}; DEL succeeds anyway and the agent's pod watch removes the pod`);
  }
  return EMPTY_SUCCESS;
}

async function status(request: StatusRequest, agent: AgentClient, log: LogLine): Promise<PluginOutcome> {
  // Fail-open ADD always succeeds, so the plugin is ready whatever the agent's state; asking would only cost time.
  if (request.settings.failPolicy === 'open') return EMPTY_SUCCESS;
  const answer = answerOf(await agent.request(AgentPath.STATUS), statusReplyOf, request.settings.agentSocket);
  if (!(answer instanceof CniError) && answer.ready) return EMPTY_SUCCESS;
  const why = answer instanceof CniError ? describe(answer) : `agent not ready${answer.reason === '' ? '' : `: ${answer.reason}`}`;
  log(`STATUS: ${why}`);
  throw new CniError(CniErrorCode.PLUGIN_NOT_AVAILABLE, 'meshlite cannot service ADD: the agent is not available (failPolicy closed)', why);
}

/** Runs a checked request; CniErrors thrown here are the outcome for the runtime. */
async function run(request: CniRequest, deps: PluginDependencies): Promise<PluginOutcome> {
  if (request.command === 'VERSION') return versionOutcome(request.cniVersion);
  const log = deps.logFor(request.settings);
  const prefix =
    'attachment' in request
      ? `${request.command} ${request.attachment.containerId}${'pod' in request && request.pod !== null ? ` ${request.pod.namespace}/${request.pod.name}` : ''}: `
      : `${request.command}: `;
  const line: LogLine = (message) => log(`${prefix}${message}`);
  switch (request.command) {
    case 'ADD':
      return add(request, deps.agentFor(request.settings), line);
    case 'CHECK':
      return check(request, deps.agentFor(request.settings), line);
    case 'DEL':
      return del(request, deps.agentFor(request.settings), line);
    case 'STATUS':
      return status(request, deps.agentFor(request.settings), line);
    case 'GC':
      // The agent's pod watch is the authority on which pods are gone (design §6); there is nothing to collect here.
      return EMPTY_SUCCESS;
  }
}

/**
 * One invocation from environment and stdin to stdout and exit status. Never throws: a CniError becomes the
 * specification's error JSON, and so does an unexpected exception, except on a fail-open ADD whose input was valid,
 * where meshlite's own fault must not keep the pod from starting.
 */
export async function handleInvocation(env: CniEnvironment, stdin: string, deps: PluginDependencies): Promise<PluginOutcome> {
  let request: CniRequest;
  try {
    request = parseRequest(env, stdin);
  } catch (err) {
    const error = err instanceof CniError ? err : new CniError(CniErrorCode.INVALID_CONFIG, 'the invocation could not be read', String(err));
    deps.logFor(null)(`${env.CNI_COMMAND ?? '(no command)'}: ${describe(error)}`);
    return errorOutcome(error, errorVersionOf(stdin));
  }
  try {
    return await run(request, deps);
  } catch (err) {
    if (err instanceof CniError) return errorOutcome(err, request.cniVersion);
    const bug = new CniError(CniErrorCode.INTERNAL_FAILURE, 'meshlite plugin failed unexpectedly', err instanceof Error ? (err.stack ?? err.message) : String(err));
    if (request.command === 'VERSION') return errorOutcome(bug, request.cniVersion);
    deps.logFor(request.settings)(`${request.command}: ${describe(bug)}`);
    if (request.command === 'ADD' && request.settings.failPolicy === 'open') return passThroughOutcome(request.prevResult, request.cniVersion);
    if (request.command === 'DEL') return EMPTY_SUCCESS;
    return errorOutcome(bug, request.cniVersion);
  }
}
