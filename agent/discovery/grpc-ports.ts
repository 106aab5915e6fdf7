// Which Service ports carry gRPC, decided from a port's raw API fields and the Service's protocol annotation (see
// docs/architecture.md, Discovery).

/**
 * appProtocol values that mean gRPC or HTTP/2 cleartext. Compared exactly, case included: Kubernetes treats the
 * field as an opaque label-syntax string, its own names (`kubernetes.io/h2c`) are lower case, and GKE reads
 * `HTTP2` (upper case) as HTTP/2 over TLS (KEP-3726), which meshlite must not claim. A port left out by a
 * mis-cased value keeps the connection balancing it had; one claimed wrongly costs a TCP passthrough (§7).
 * `kubernetes.io/grpc` was listed by the API's own field description in one release (KEP-3726).
 */
export const GRPC_APP_PROTOCOLS: ReadonlySet<string> = new Set(['grpc', 'kubernetes.io/h2c', 'http2', 'kubernetes.io/grpc']);

/** Port name prefixes that mean gRPC (the Istio convention `grpc`, `grpc-api`; `h2c-internal`). Port names are
 *  lower case by API validation (IANA_SVC_NAME), so no case folding is needed. */
export const GRPC_PORT_NAME_PREFIXES: readonly string[] = ['grpc', 'h2c'];

/** The value of `meshlite.io/protocol` that makes every TCP port of a Service gRPC. */
export const GRPC_PROTOCOL_ANNOTATION_VALUE = 'grpc';

/** The fields of one entry of a Service's `spec.ports`, as the API sends them (anything may be missing or mistyped). */
export interface RawServicePortFields {
  name?: unknown;
  protocol?: unknown;
  appProtocol?: unknown;
}

/** TCP, which is what an absent protocol means (the API defaults it). `tcp` is not TCP: the API only accepts `TCP`. */
export function isTcp(protocol: unknown): boolean {
  return protocol === undefined || protocol === null || protocol === 'TCP';
}

/**
 * Whether a Service port carries gRPC: any TCP port of a Service annotated `meshlite.io/protocol: grpc`
 * (`serviceAnnotatedGrpc`, whatever the port's name or appProtocol); otherwise a TCP port whose appProtocol is one
 * of GRPC_APP_PROTOCOLS or, when it has no appProtocol, whose name starts with `grpc` or `h2c`. A declared
 * appProtocol wins over the naming convention (as in Istio): `grpc-tls` with appProtocol `https` is TLS, not h2c.
 * Values of the wrong type never match.
 */
export function isGrpcServicePort(port: RawServicePortFields, serviceAnnotatedGrpc: boolean): boolean {
  if (!isTcp(port.protocol)) return false;
  if (serviceAnnotatedGrpc) return true;
  const appProtocol = port.appProtocol;
  if (typeof appProtocol === 'string' && appProtocol !== '') return GRPC_APP_PROTOCOLS.has(appProtocol);
  const name = port.name;
  return typeof name === 'string' && GRPC_PORT_NAME_PREFIXES.some((prefix) => name.startsWith(prefix));
}
