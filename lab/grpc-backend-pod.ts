// A gRPC backend pod: grpc-backend-process.ts run inside a pod's (or node's) namespace, bound to its IP.

import { fileURLToPath } from 'node:url';
import type { NetHost } from './netns.ts';
import type { NamespaceProcess, NamespaceSpawner } from './netns-process.ts';

const BACKEND_PROGRAM = fileURLToPath(new URL('./grpc-backend-process.ts', import.meta.url));

export interface GrpcBackendOptions {
  /** Reported in the `x-served-by` header (META.servedBy); defaults to the host's name. */
  id?: string;
  /** Defaults to 50051: pods have their own IPs, so every backend can use the same port, as in a cluster. */
  port?: number;
  /** The host IPv4 by default; `any` listens on every address of the host (both families of a dual-stack host). */
  bind?: 'ipv4' | 'ipv6' | 'any';
}

export interface GrpcBackend {
  id: string;
  host: NetHost;
  port: number;
  /** `IPv4:port`, the endpoint address a Service would list. */
  address: string;
  /** `[IPv6]:port` when the host has an IPv6 address. */
  address6?: string;
  process: NamespaceProcess;
}

function bindHost(host: NetHost, bind: GrpcBackendOptions['bind']): string {
  if (bind === 'any') return '[::]';
  if (bind === 'ipv6') {
    if (host.ipv6 === undefined) throw new Error(`host ${host.name} has no IPv6 address`);
    return `[${host.ipv6}]`;
  }
  return host.ipv4;
}

/** Starts the echo server and resolves once it listens (the program prints its port when bound). */
export async function startGrpcBackend(
  spawn: NamespaceSpawner,
  host: NetHost,
  options: GrpcBackendOptions = {},
): Promise<GrpcBackend> {
  const id = options.id ?? host.name;
  const bindTo = bindHost(host, options.bind ?? 'ipv4');
  const proc = spawn(host.ns, process.execPath, [BACKEND_PROGRAM, id, bindTo, String(options.port ?? 50051)]);
  const port = Number(await proc.line((line) => /^\d+$/.test(line.trim()), 15_000));
  const backend: GrpcBackend = { id, host, port, address: `${host.ipv4}:${port}`, process: proc };
  if (host.ipv6 !== undefined) backend.address6 = `[${host.ipv6}]:${port}`;
  return backend;
}
