// The service key, `namespace/name:port`: how registry, balancers, routes and metrics name one service port.

export function serviceKey(namespace: string, name: string, port: number): string {
  return `${namespace}/${name}:${port}`;
}

export interface ServiceKeyParts {
  namespace: string;
  name: string;
  port: number;
}

/** The inverse of serviceKey; null when `key` is not one (Kubernetes names contain neither `/` nor `:`). */
export function parseServiceKey(key: string): ServiceKeyParts | null {
  const slash = key.indexOf('/');
  const colon = key.lastIndexOf(':');
  if (slash <= 0 || colon <= slash + 1 || colon === key.length - 1) return null;
  const portText = key.slice(colon + 1);
  if (!/^[0-9]{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  if (port < 1 || port > 65535) return null;
  const name = key.slice(slash + 1, colon);
  if (name.includes('/') || name.includes(':')) return null;
  return { namespace: key.slice(0, slash), name, port };
}
